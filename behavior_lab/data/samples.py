"""Training samples: one per frame of the selected episodes (uniformly random frames, spec §12.3).

Per sample (docs/interfaces.md): the 3 camera images at model resolution, the 23-D state from
the 256-D proprio (spec §1.2) z-scored globally and padded to 32, the 30-step action chunk from the
frame — delta to the chunk-start state, per-timestep normalised, padded to 32 (spec §8) — with the
steps past the episode end repeating the last action and flagged in `action_is_pad` (LeRobot's
delta-timestamp padding), the task id, and the time-uniform stage label (spec §6.1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from behavior_lab.data import layout, schema
from behavior_lab.data import transforms as T
from behavior_lab.data.frame_cache import FrameCache
from behavior_lab.data.reader import DEFAULT_CAMERAS, BehaviorDataset
from behavior_lab.data.stats import NormStats
from behavior_lab.data.video import VideoReader


def stage_label(frame: int, length: int, num_stages: int) -> int:
    """clip(floor(30·τ / (T / S)), 0, S − 1) with 30·τ = the frame index (spec §6.1).

    Computed in integers (frame·S // T) so stage boundaries do not depend on float rounding.
    """
    return int(min(num_stages - 1, max(0, (int(frame) * int(num_stages)) // max(1, int(length)))))


def resolve_stage_table(
    table: Mapping[int | str, int] | str | None, stats: NormStats, tasks: Sequence[int]
) -> dict[int, int]:
    """Stages per task: `table` ({task: S}, or "seed" for the seed's hard-coded table, spec §6.1)
    overrides the stats' clip(ceil(mean_len / 900), 5, 15)."""
    out = {t: stats.num_stages(t) for t in tasks}
    if table is None:
        return out
    if isinstance(table, str):
        if table != "seed":
            raise ValueError(f"stage table {table!r}: pass a {{task: S}} mapping or 'seed'")
        return {t: schema.SEED_TASK_NUM_STAGES[t] for t in tasks}
    for k, v in table.items():
        s = int(v)
        if not 1 <= s <= schema.MAX_NUM_STAGES:
            raise ValueError(f"stage table: task {k} has {s} stages; expected 1..{schema.MAX_NUM_STAGES}")
        out[schema.task_id(k)] = s
    return out


class ChunkSampleSource:
    """Map-style source of training samples (numpy dicts), collated by torch's default collate.

    use_cache=True reads frames from the FrameCache (built on first use); False decodes the mp4s
    per sample (slow; for comparison and tiny datasets). action_norm: "per_timestep" (seed),
    "global" or "quantile"; delta_actions=False trains on absolute actions (spec §8 ablations).
    fast_tokenizer: None, True (load DIR/meta/fast_tokenizer), a directory, or a FastTokenizer.
    task_info=True adds the privileged `observation.task_info` vector of the frame (DESIGN §8 lever 5;
    the dataset must carry the column).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        stats: NormStats | str | os.PathLike | None = None,
        image_size: int | tuple[int, int] = 224,
        cache_dir: str | os.PathLike | None = None,
        *,
        tasks: Sequence[str | int] | None = None,
        episodes: Sequence[int] | None = None,
        cameras: Sequence[str] = DEFAULT_CAMERAS,
        horizon: int = schema.ACTION_HORIZON,
        delta_actions: bool = True,
        action_norm: T.NormMode = "per_timestep",
        state_norm: str = "global",
        stage_table: Mapping[int | str, int] | str | None = None,
        use_cache: bool = True,
        fast_tokenizer: Any = None,
        max_fast_tokens: int = 200,
        task_info: bool = False,
        progress: bool = True,
    ):
        self.dataset = BehaviorDataset(root, tasks=tasks, episodes=episodes, cameras=cameras)
        self.stats = stats if isinstance(stats, NormStats) else NormStats.load(root if stats is None else stats)
        self.horizon = int(horizon)
        if self.horizon > self.stats.horizon and action_norm == "per_timestep":
            raise ValueError(f"horizon {horizon} exceeds the stats' per-timestep horizon {self.stats.horizon}")
        mask = schema.DELTA_ACTION_MASK if delta_actions else np.zeros(schema.ACTION_DIM, dtype=bool)
        if not np.array_equal(np.asarray(self.stats.delta_mask, dtype=bool), mask):
            raise ValueError(
                f"the norm stats were computed with delta mask {self.stats.delta_mask.astype(int).tolist()}, "
                f"but delta_actions={delta_actions}; re-run `behavior-lab stats` with the same setting"
            )
        if state_norm not in ("global", "quantile", "off"):
            raise ValueError(f"state_norm {state_norm!r}: choose 'global' (seed), 'quantile' or 'off'")
        self.delta = T.DeltaActions(mask=mask, enabled=delta_actions)
        self.transforms = (
            T.NormalizeActions.from_stats(self.stats, action_norm),
            T.NormalizeState.from_stats(
                self.stats, "global" if state_norm == "off" else state_norm, enabled=state_norm != "off"
            ),
            T.PadTo(schema.PADDED_DIM),
        )
        self.image_size = image_size
        self.use_cache = use_cache
        self.cache = FrameCache(self.dataset, image_size, cache_dir, progress=progress)
        self.cache.ensure(frames=use_cache)
        self.episodes = np.asarray(self.dataset.episode_indices, dtype=np.int64)
        self.lengths = np.asarray([self.dataset.episode_length(e) for e in self.episodes], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.task_ids = self.episodes // layout.EPISODES_PER_TASK_STRIDE
        self.num_stages = resolve_stage_table(stage_table, self.stats, sorted(set(self.task_ids.tolist())))
        self.camera_keys = schema.DATASET_RGB_KEYS  # model slot order: head, left, right (spec §1.2)
        self._readers: dict[tuple[int, str], VideoReader] = {}
        self._h, self._w = self.cache.size
        self.fast_tokenizer = self._load_fast(fast_tokenizer)
        self.max_fast_tokens = int(max_fast_tokens)
        # privileged observation: small (T, D) arrays, read once from the parquets
        self.task_info = (
            {int(e): self.dataset.load_task_info(int(e)) for e in self.episodes} if task_info else None
        )

    def _load_fast(self, spec: Any) -> Any:
        if spec is None or spec is False:
            return None
        from behavior_lab.data.fast_tokenizer import FastTokenizer

        if spec is True:
            return FastTokenizer.load(self.dataset.root / layout.FAST_TOKENIZER_DIR)
        if isinstance(spec, (str, os.PathLike)):
            return FastTokenizer.load(Path(spec))
        return spec

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Global sample index -> (episode slot, frame)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range (0..{len(self) - 1})")
        slot = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return slot, int(index - self.offsets[slot])

    def _image(self, ep: int, key: str, frame: int) -> np.ndarray:
        if self.use_cache:
            return self.cache.frames(ep, key)[frame]
        reader = self._readers.get((ep, key))
        if reader is None:
            if len(self._readers) >= 16:
                self._readers.pop(next(iter(self._readers))).close()
            reader = self._readers[(ep, key)] = VideoReader(self.dataset.video_path(ep, key), self.cache.size)
        return reader.read(frame)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        slot, f = self.locate(int(index))
        ep, length = int(self.episodes[slot]), int(self.lengths[slot])
        state = np.asarray(self.cache.lowdim(ep, "state")[f])
        idx = f + np.arange(self.horizon)
        is_pad = idx >= length
        actions = np.asarray(self.cache.lowdim(ep, "action")[np.minimum(idx, length - 1)])  # repeat last
        delta = self.delta({"state": state, "actions": actions})
        data = T.apply(self.transforms, delta)
        images = np.zeros((len(self.camera_keys), self._h, self._w, 3), dtype=np.uint8)
        image_mask = np.zeros(len(self.camera_keys), dtype=bool)
        for i, key in enumerate(self.camera_keys):
            if key in self.dataset.cameras:
                images[i] = self._image(ep, key, f)
                image_mask[i] = True
        task = int(self.task_ids[slot])
        n_stages = self.num_stages[task]
        sample = {
            "images": images,
            "image_mask": image_mask,
            "state": data["state"].astype(np.float32),
            "actions": data["actions"].astype(np.float32),
            "action_is_pad": is_pad,
            "task_id": np.int64(task),
            "stage": np.int64(stage_label(f, length, n_stages)),
            "num_stages": np.int64(n_stages),
        }
        if self.task_info is not None:
            sample["task_info"] = np.asarray(self.task_info[ep][f], dtype=np.float32)
        if self.fast_tokenizer is not None:
            from behavior_lab.data.fast_samples import fast_tokens_for_chunk

            # spec §7.2 denormalises the normalised chunk back to raw deltas before tokenising;
            # tokenising the raw delta chunk directly is the same without the float round trip.
            tokens, mask = fast_tokens_for_chunk(self.fast_tokenizer, delta["actions"], self.max_fast_tokens)
            sample["fast_tokens"], sample["fast_mask"] = tokens, mask
        return sample

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_readers"] = {}
        return state
