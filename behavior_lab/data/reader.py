"""Read a BEHAVIOR LeRobot v2.1 dataset: metadata, episode parquet, episode videos, annotations.

Opening validates the metadata up front (version, feature widths, every episode's task present in
tasks.jsonl), so a bad dataset fails at construction with the file and the expectation named, not
deep inside a training step. Selection: tasks by name or id, explicit episodes, cameras.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from behavior_lab.data import layout, schema
from behavior_lab.data.layout import DatasetError
from behavior_lab.data.parquet_io import check_finite, column_to_array, read_table
from behavior_lab.data.video import decode_video

DEFAULT_CAMERAS = schema.CAMERA_NAMES  # RGB head + both wrists (spec §1.2)


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing (a LeRobot v2.1 dataset has {path.relative_to(path.parent.parent)})")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: line {n} is not valid JSON ({e}); the file may be truncated") from e
    return rows


def _check_version(root: Path, info: dict | None) -> None:
    version = None if info is None else info.get("codebase_version")
    v3_layout = (root / "meta" / "episodes").is_dir() and not (root / layout.EPISODES_FILE).exists()
    if (version is not None and str(version).startswith("v3")) or (version is None and v3_layout):
        raise DatasetError(
            f"{root / layout.INFO_FILE}: this is a LeRobot v3.0 dataset (codebase_version "
            f"{version or 'v3 layout: meta/episodes/*.parquet'}). behavior_lab reads LeRobot v2.1, the "
            "format of the BEHAVIOR-1K 2025 challenge demos (behavior-1k/2025-challenge-demos); the "
            "2026 demos are v3.0 with a different state layout. Use the 2025 dataset or convert it to v2.1."
        )
    if info is not None and version != layout.CODEBASE_VERSION:
        raise DatasetError(
            f"{root / layout.INFO_FILE}: codebase_version is {version!r}; expected {layout.CODEBASE_VERSION!r} "
            "(BEHAVIOR-1K 2025 is LeRobot v2.1)"
        )


def load_info(root: Path) -> dict[str, Any]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset directory not found")
    path = root / layout.INFO_FILE
    if not path.is_file():
        _check_version(root, None)
        raise DatasetError(f"{path}: missing; expected the LeRobot v2.1 meta/info.json (is {root} a dataset root?)")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e}); the file may be truncated") from e
    _check_version(root, info)
    for key in ("fps", "features", "data_path", "video_path"):
        if key not in info:
            raise DatasetError(f"{path}: missing key {key!r}")
    for key, dim in layout.VECTOR_FEATURES.items():
        feat = info["features"].get(key)
        if feat is None:
            raise DatasetError(f"{path}: features lack {key!r}; expected a float32 vector of {dim}")
        if list(feat.get("shape", [])) != [dim]:
            raise DatasetError(
                f"{path}: feature {key!r} has shape {feat.get('shape')}; expected [{dim}] (BEHAVIOR R1Pro, facts §2.2)"
            )
    return info


class BehaviorDataset:
    """A (selected view of a) BEHAVIOR v2.1 dataset.

    tasks: names or ids (None = all in the dataset); episodes: explicit episode indices (None = all
    of the selected tasks); cameras: names ("head", "left_wrist", "right_wrist") or dataset keys.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        tasks: Iterable[str | int] | None = None,
        episodes: Iterable[int] | None = None,
        cameras: Sequence[str] = DEFAULT_CAMERAS,
    ):
        self.root = Path(root)
        self.info = load_info(self.root)
        self.fps = int(self.info["fps"])
        self._data_tpl = self.info["data_path"]
        self._video_tpl = self.info["video_path"]
        self._ann_tpl = self.info.get("annotation_path", layout.ANNOTATION_PATH)
        self.tasks: dict[int, dict] = {}
        tasks_path = self.root / layout.TASKS_FILE
        for row in read_jsonl(tasks_path):
            if "task_index" not in row:
                raise DatasetError(f"{tasks_path}: row {row} lacks 'task_index'")
            self.tasks[int(row["task_index"])] = row
        episodes_path = self.root / layout.EPISODES_FILE
        self.all_episodes: dict[int, dict] = {}
        for row in read_jsonl(episodes_path):
            if "episode_index" not in row or "length" not in row:
                raise DatasetError(f"{episodes_path}: row {row} lacks 'episode_index' or 'length'")
            ep = int(row["episode_index"])
            task = layout.task_of_episode(ep)
            if task not in self.tasks:
                raise DatasetError(
                    f"{tasks_path}: has no task_index {task}, needed by episode {ep} in {episodes_path} "
                    f"(task = episode_index // {layout.EPISODES_PER_TASK_STRIDE}); tasks present: {sorted(self.tasks)}"
                )
            self.all_episodes[ep] = row
        self.episodes = self._select(tasks, episodes)
        self.cameras = tuple(self._resolve_camera(c) for c in cameras)

    # --- selection -----------------------------------------------------------------------------
    def resolve_task(self, task: str | int) -> int:
        """Task name, prompt or id -> task index present in this dataset."""
        if isinstance(task, str) and not task.isdigit():
            for idx, row in self.tasks.items():
                if task in (row.get("task_name"), row.get("task")):
                    return idx
        try:
            idx = schema.task_id(task)
        except KeyError as e:
            raise DatasetError(f"{self.root / layout.TASKS_FILE}: {e.args[0]}") from None
        if idx not in self.tasks:
            names = ", ".join(f"{i}:{r.get('task_name', r.get('task'))}" for i, r in sorted(self.tasks.items()))
            raise DatasetError(f"{self.root / layout.TASKS_FILE}: task {task!r} (id {idx}) not in this dataset; present: {names}")
        return idx

    def _select(self, tasks: Iterable[str | int] | None, episodes: Iterable[int] | None) -> dict[int, dict]:
        chosen = dict(self.all_episodes)
        if tasks is not None:
            ids = {self.resolve_task(t) for t in tasks}
            chosen = {e: r for e, r in chosen.items() if layout.task_of_episode(e) in ids}
        if episodes is not None:
            wanted = [int(e) for e in episodes]
            missing = [e for e in wanted if e not in self.all_episodes]
            if missing:
                raise DatasetError(f"{self.root / layout.EPISODES_FILE}: no episode(s) {missing}")
            chosen = {e: chosen[e] for e in wanted if e in chosen}
        return dict(sorted(chosen.items()))

    def _resolve_camera(self, camera: str) -> str:
        key = layout.camera_key(camera)
        if key not in self.info["features"]:
            present = [k for k, f in self.info["features"].items() if f.get("dtype") == "video"]
            raise DatasetError(f"{self.root / layout.INFO_FILE}: no video stream {key!r}; present: {', '.join(present)}")
        return key

    # --- metadata ------------------------------------------------------------------------------
    @property
    def episode_indices(self) -> list[int]:
        return list(self.episodes)

    @property
    def task_indices(self) -> list[int]:
        return sorted({layout.task_of_episode(e) for e in self.episodes})

    def task_of(self, episode_index: int) -> int:
        return layout.task_of_episode(episode_index)

    def episode_length(self, episode_index: int) -> int:
        try:
            return int(self.all_episodes[int(episode_index)]["length"])
        except KeyError:
            raise DatasetError(f"{self.root / layout.EPISODES_FILE}: no episode {episode_index}") from None

    def mean_length(self, task: str | int) -> float:
        """Mean episode length in frames over all the dataset's episodes of `task`."""
        tid = self.resolve_task(task)
        lengths = [int(r["length"]) for e, r in self.all_episodes.items() if layout.task_of_episode(e) == tid]
        return float(np.mean(lengths)) if lengths else 0.0

    @cached_property
    def episode_stats(self) -> dict[int, dict]:
        """meta/episodes_stats.jsonl keyed by episode index ({} when the file is absent)."""
        path = self.root / layout.EPISODES_STATS_FILE
        return {int(r["episode_index"]): r.get("stats", {}) for r in read_jsonl(path)} if path.exists() else {}

    def data_path(self, episode_index: int) -> Path:
        return layout.data_path(self.root, episode_index, self._data_tpl)

    def video_path(self, episode_index: int, camera: str) -> Path:
        return layout.video_path(self.root, episode_index, layout.camera_key(camera), self._video_tpl)

    def annotation_path(self, episode_index: int) -> Path:
        return layout.annotation_path(self.root, episode_index, self._ann_tpl)

    # --- content -------------------------------------------------------------------------------
    def load_parquet(self, episode_index: int, columns: list[str] | None = None) -> pd.DataFrame:
        return read_table(self.data_path(episode_index), columns).to_pandas()

    def load_arrays(
        self, episode_index: int, keys: Sequence[str] = (schema.DATASET_STATE_KEY, schema.DATASET_ACTION_KEY)
    ) -> dict[str, np.ndarray]:
        """Vector columns as validated (T, D) float32 arrays; scalar columns as (T,) arrays."""
        path = self.data_path(episode_index)
        table = read_table(path, list(keys))
        expected = self.episode_length(episode_index)
        if table.num_rows != expected:
            raise DatasetError(
                f"{path}: {table.num_rows} rows; expected {expected} (length of episode {episode_index} in meta/episodes.jsonl)"
            )
        out = {}
        for key in keys:
            dim = layout.VECTOR_FEATURES.get(key) or self.optional_feature_dim(key)
            arr = column_to_array(table, key, dim, path)
            if dim is not None:
                check_finite(arr, key, path)
            out[key] = arr
        return out

    def optional_feature_dim(self, key: str) -> int | None:
        """Width of an optional vector feature (e.g. `observation.task_info`) or None if absent."""
        if key not in layout.OPTIONAL_VECTOR_FEATURES:
            return None
        feat = self.info["features"].get(key)
        return int(feat["shape"][0]) if feat else None

    def load_task_info(self, episode_index: int) -> np.ndarray:
        """(T, D) float32 privileged `observation.task_info` (DESIGN §8 lever 5), validated."""
        key = schema.DATASET_TASK_INFO_KEY
        if self.optional_feature_dim(key) is None:
            raise DatasetError(
                f"{self.root / layout.INFO_FILE}: features lack {key!r}; the privileged observation mode "
                "needs demonstrations recorded with it (`behavior-lab demos` writes it)"
            )
        return self.load_arrays(episode_index, (key,))[key]

    def load_state_action(self, episode_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, 23) state from proprio (spec §1.2) and (T, 23) absolute action, validated."""
        arrays = self.load_arrays(episode_index)
        return schema.extract_state_from_proprio(arrays[schema.DATASET_STATE_KEY]), arrays[schema.DATASET_ACTION_KEY]

    def decode_video(self, episode_index: int, camera: str, size: int | tuple[int, int] | None = None) -> np.ndarray:
        """(T, h, w, 3) uint8 frames of one camera, resized to `size` (None = stored resolution)."""
        return decode_video(self.video_path(episode_index, camera), size, self.episode_length(episode_index))

    def annotations(self, episode_index: int) -> dict | None:
        path = self.annotation_path(episode_index)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: not valid JSON ({e})") from e

    def __len__(self) -> int:
        return len(self.episodes)

    def __repr__(self) -> str:
        return f"BehaviorDataset({str(self.root)!r}, episodes={len(self.episodes)}, tasks={self.task_indices})"
