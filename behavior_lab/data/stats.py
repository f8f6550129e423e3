"""Normalisation statistics and the action correlation, computed from episode parquet only.

`compute_stats(root)` streams every episode once (never video) and writes, atomically and only
after everything succeeded, `meta/action_correlation.npz` then `meta/norm_stats.json` (the JSON is
the commit: it carries the npz's sha256). What is computed (spec §3.1, §8.2, seed
`scripts/compute_norm_stats.py`):
- per-timestep action mean/std (H, 32) over the sampled chunk-start delta chunks;
- global action mean/std (32,) over all frames, delta to the same-frame state (unused by the seed);
- action q01/q99 (32,) over up to `max_quantile_samples` sampled chunk rows (FAST, spec §7.1);
- state mean/std (32,) over all frames; state q01/q99 over up to `max_quantile_samples` frames
  (the seed stored min/max there; real percentiles are used here);
- the 960 x 960 chunk correlation's Cholesky factor (spec §3.1);
- per task: mean episode length and S = clip(ceil(mean/900), 5, 15) stages (spec §6.1).
Padded dims carry mean 0 / std 1 / q01 −1 / q99 1, so every transform is the identity on them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from behavior_lab.data import layout, schema
from behavior_lab.data.atomic import save_npz, write_json
from behavior_lab.data.chunk_sampling import SamplingPlan, delta_chunks, make_plan
from behavior_lab.data.correlation import ChunkCorrelation, correlation_from_comoments
from behavior_lab.data.layout import DatasetError
from behavior_lab.data.moments import RunningCoMoments, RunningMoments
from behavior_lab.data.progress import progress_bar
from behavior_lab.data.reader import BehaviorDataset

STATS_FORMAT = "behavior_lab.norm_stats"
STATS_VERSION = 1
CORRELATION_NPZ = Path(layout.CORRELATION_FILE).name
NORM_STATS_JSON = Path(layout.NORM_STATS_FILE).name


def _pad(x: np.ndarray, fill: float, dim: int = schema.PADDED_DIM) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    pad = np.full(x.shape[:-1] + (dim - x.shape[-1],), fill)
    return np.concatenate([x, pad], axis=-1)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class NormStats:
    """What training and serving need to (un)normalise; see docs/interfaces.md."""

    action_mean: np.ndarray  # (H, 32) per-timestep
    action_std: np.ndarray  # (H, 32)
    action_global_mean: np.ndarray  # (32,)
    action_global_std: np.ndarray  # (32,)
    action_q01: np.ndarray  # (32,)
    action_q99: np.ndarray  # (32,)
    state_mean: np.ndarray  # (32,)
    state_std: np.ndarray  # (32,)
    state_q01: np.ndarray  # (32,)
    state_q99: np.ndarray  # (32,)
    task_num_stages: dict[int, int]
    task_mean_length: dict[int, float]
    delta_mask: np.ndarray  # (23,) the mask the action stats were computed with
    horizon: int = schema.ACTION_HORIZON
    info: dict[str, Any] = field(default_factory=dict)  # counts and the settings used
    correlation_path: Path | None = None
    correlation_sha256: str | None = None

    @cached_property
    def correlation_cholesky(self) -> np.ndarray:
        """(960, 960) lower Cholesky factor of the chunk correlation, loaded on first use."""
        if self.correlation_path is None:
            raise DatasetError("these stats were computed without the action correlation")
        path = Path(self.correlation_path)
        if not path.is_file():
            raise DatasetError(f"{path}: action correlation file missing (referenced by {NORM_STATS_JSON})")
        if self.correlation_sha256 and _sha256(path) != self.correlation_sha256:
            raise DatasetError(
                f"{path}: content does not match the sha256 recorded in {NORM_STATS_JSON}; "
                "re-run `behavior-lab stats` so both come from one pass"
            )
        with np.load(path) as z:
            chol = np.asarray(z["cholesky"])
        size = self.horizon * schema.PADDED_DIM
        if chol.shape != (size, size):
            raise DatasetError(f"{path}: cholesky is {chol.shape}; expected ({size}, {size})")
        return chol

    def num_stages(self, task: int) -> int:
        """Stage count of a task: from the stats, else the seed's table (spec §6.1)."""
        return int(self.task_num_stages.get(int(task), schema.SEED_TASK_NUM_STAGES[int(task)]))

    # --- (de)serialisation --------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out = {
            "format": STATS_FORMAT,
            "version": STATS_VERSION,
            "horizon": self.horizon,
            "action_dim": schema.ACTION_DIM,
            "padded_dim": schema.PADDED_DIM,
            "delta_mask": np.asarray(self.delta_mask, dtype=bool).tolist(),
            "actions": {
                "mean": self.action_mean.tolist(),
                "std": self.action_std.tolist(),
                "global_mean": self.action_global_mean.tolist(),
                "global_std": self.action_global_std.tolist(),
                "q01": self.action_q01.tolist(),
                "q99": self.action_q99.tolist(),
            },
            "state": {k: getattr(self, f"state_{k}").tolist() for k in ("mean", "std", "q01", "q99")},
            "task_num_stages": {str(k): int(v) for k, v in sorted(self.task_num_stages.items())},
            "task_mean_length": {str(k): float(v) for k, v in sorted(self.task_mean_length.items())},
            "info": self.info,
            "correlation": None
            if self.correlation_path is None
            else {"file": Path(self.correlation_path).name, "sha256": self.correlation_sha256},
        }
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], base_dir: Path, source: str = NORM_STATS_JSON) -> "NormStats":
        if obj.get("format") != STATS_FORMAT:
            raise DatasetError(f"{source}: not a behavior_lab norm-stats file (format {obj.get('format')!r})")
        if int(obj.get("version", -1)) != STATS_VERSION:
            raise DatasetError(f"{source}: norm-stats version {obj.get('version')}; expected {STATS_VERSION}")
        a, s = obj["actions"], obj["state"]
        arr = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
        corr = obj.get("correlation")
        stats = cls(
            action_mean=arr(a["mean"]),
            action_std=arr(a["std"]),
            action_global_mean=arr(a["global_mean"]),
            action_global_std=arr(a["global_std"]),
            action_q01=arr(a["q01"]),
            action_q99=arr(a["q99"]),
            state_mean=arr(s["mean"]),
            state_std=arr(s["std"]),
            state_q01=arr(s["q01"]),
            state_q99=arr(s["q99"]),
            task_num_stages={int(k): int(v) for k, v in obj["task_num_stages"].items()},
            task_mean_length={int(k): float(v) for k, v in obj["task_mean_length"].items()},
            delta_mask=np.asarray(obj["delta_mask"], dtype=bool),
            horizon=int(obj["horizon"]),
            info=obj.get("info", {}),
            correlation_path=None if corr is None else Path(base_dir) / corr["file"],
            correlation_sha256=None if corr is None else corr.get("sha256"),
        )
        h = stats.horizon
        expect = {"action_mean": (h, 32), "action_std": (h, 32), "action_global_mean": (32,), "state_mean": (32,)}
        for name, shape in expect.items():
            if getattr(stats, name).shape != shape:
                raise DatasetError(f"{source}: {name} has shape {getattr(stats, name).shape}; expected {shape}")
        return stats

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NormStats":
        """From a dataset root (meta/norm_stats.json), a directory holding norm_stats.json
        (an exported checkpoint), or the JSON file itself."""
        p = Path(path)
        candidates = [p] if p.suffix == ".json" else [p / layout.NORM_STATS_FILE, p / NORM_STATS_JSON]
        for c in candidates:
            if c.is_file():
                try:
                    obj = json.loads(c.read_text())
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{c}: not valid JSON ({e})") from e
                return cls.from_json(obj, c.parent, str(c))
        raise DatasetError(
            f"{candidates[0]}: norm stats missing; run `behavior-lab stats data.root={p}` first"
        )


def task_summary(
    ds: BehaviorDataset, stage_table: dict[int, int] | None = None
) -> tuple[dict[int, float], dict[int, int]]:
    """Mean length (frames) and stage count per task over all the dataset's episodes (spec §6.1)."""
    lengths: dict[int, list[int]] = {}
    for ep, row in ds.all_episodes.items():
        lengths.setdefault(layout.task_of_episode(ep), []).append(int(row["length"]))
    mean_len = {t: float(np.mean(v)) for t, v in sorted(lengths.items())}
    stages = {t: schema.num_stages_from_mean_length(m) for t, m in mean_len.items()}
    stages.update({int(k): int(v) for k, v in (stage_table or {}).items()})
    return mean_len, stages


def compute_stats(
    root: str | os.PathLike,
    *,
    tasks: Iterable[str | int] | None = None,
    seed: int = 42,
    sample_fraction: float = 0.1,
    max_correlation_samples: int | None = 2_000_000,
    max_quantile_samples: int | None = 1_000_000,
    horizon: int = schema.ACTION_HORIZON,
    delta_actions: bool = True,
    correlation: bool = True,
    stage_table: dict[int, int] | None = None,
    std_floor_rel: float = 0.0,
    chunk_sink: Callable[[np.ndarray], None] | None = None,
    write: bool = True,
    progress: bool = True,
) -> NormStats:
    """One streaming pass over the episodes' parquet; returns the stats (and writes them if `write`).

    Defaults follow the seed (spec §3.1): 10% of chunks per episode, 2M correlation chunks, 1M
    quantile rows; randomness is reproducible from `seed` (see chunk_sampling). `chunk_sink`, if
    given, receives every sampled (k, H, 23) delta chunk batch (used for the FAST tokenizer fit).
    """
    ds = BehaviorDataset(root, tasks=tasks, cameras=())
    if not ds.episodes:
        raise DatasetError(f"{ds.root / layout.EPISODES_FILE}: no episodes selected (tasks={tasks})")
    mask = schema.DELTA_ACTION_MASK if delta_actions else np.zeros(schema.ACTION_DIM, dtype=bool)
    lengths = {ep: ds.episode_length(ep) for ep in ds.episode_indices}
    plan = make_plan(lengths, horizon, sample_fraction, seed, max_correlation_samples, max_quantile_samples)
    if plan.num_chunks == 0:
        raise DatasetError(f"{ds.root}: no episode has at least {horizon} frames; cannot build action chunks")
    acc = _Accumulators(schema.ACTION_DIM, horizon, correlation)
    chunk_pos = frame_pos = 0
    for ep in progress_bar(ds.episode_indices, "stats: episodes", enabled=progress):
        state, action = ds.load_state_action(ep)
        acc.state.update(state)
        acc.global_action.update(np.where(mask, action - state, action))
        acc.state_rows.append(_take(state, plan.state_keep, frame_pos))
        frame_pos += len(state)
        starts = plan.starts[ep]
        if len(starts) == 0:
            continue
        chunks = delta_chunks(state, action, starts, horizon, mask)  # (k, H, 23)
        acc.per_timestep.update(chunks)
        flat_rows = chunks.reshape(-1, schema.ACTION_DIM)
        acc.action_rows.append(_take(flat_rows, plan.quantile_keep, chunk_pos * horizon))
        if acc.comoments is not None:
            acc.comoments.update(_take(chunks.reshape(len(chunks), -1), plan.corr_keep, chunk_pos))
        chunk_pos += len(chunks)
        if chunk_sink is not None:
            chunk_sink(chunks)
    mean_len, stages = task_summary(ds, stage_table)
    corr = (
        correlation_from_comoments(acc.comoments.c, acc.comoments.n, horizon, schema.ACTION_DIM, schema.PADDED_DIM)
        if acc.comoments is not None
        else None
    )
    stats = _assemble(acc, plan, mask, horizon, mean_len, stages, corr, dict(
        seed=seed, sample_fraction=sample_fraction, max_correlation_samples=max_correlation_samples,
        max_quantile_samples=max_quantile_samples, tasks=None if tasks is None else [str(t) for t in tasks],
        num_episodes=len(lengths), num_frames=frame_pos, std_floor_rel=std_floor_rel,
    ))
    if write:
        stats = write_stats(stats, corr, ds.root / "meta")
    return stats


def _take(rows: np.ndarray, keep: np.ndarray | None, offset: int) -> np.ndarray:
    return rows if keep is None else rows[keep[offset : offset + len(rows)]]


class _Accumulators:
    def __init__(self, dim: int, horizon: int, correlation: bool):
        self.state = RunningMoments((dim,))
        self.global_action = RunningMoments((dim,))
        self.per_timestep = RunningMoments((horizon, dim))
        self.comoments = RunningCoMoments(horizon * dim) if correlation else None
        self.action_rows: list[np.ndarray] = []
        self.state_rows: list[np.ndarray] = []


STD_FLOOR_ABS = 1e-3  # action units (rad, m/s, gripper units)


def floor_per_timestep_std(std: np.ndarray, rel: float) -> np.ndarray:
    """Floor each (t, d) std at max(1e-3, rel x max_t std[:, d]).

    Deviation from the seed (spec §8.2 uses std + 1e-6 only): on small datasets the 10% chunk
    sample can leave a timestep with ~0 spread in a dimension that does vary (a gripper flip), and
    held-out chunks then normalise to ~1e6. rel = 0 restores the seed's behaviour exactly.
    """
    std = np.asarray(std, dtype=np.float64)
    if rel <= 0:
        return std
    floor = np.maximum(STD_FLOOR_ABS, rel * std.max(axis=0, keepdims=True))
    return np.maximum(std, floor)


def _assemble(acc, plan: SamplingPlan, mask, horizon, mean_len, stages, corr: ChunkCorrelation | None, settings) -> NormStats:
    action_rows = np.concatenate(acc.action_rows).astype(np.float64)
    state_rows = np.concatenate(acc.state_rows).astype(np.float64)
    info = dict(settings)
    info.update(
        num_chunks=plan.num_chunks,
        num_correlation_chunks=None if corr is None else corr.num_chunks,
        num_action_quantile_rows=len(action_rows),
        num_state_quantile_rows=len(state_rows),
        correlation_regularization=None if corr is None else corr.regularization,
    )
    return NormStats(
        action_mean=_pad(acc.per_timestep.mean, 0.0),
        action_std=_pad(floor_per_timestep_std(acc.per_timestep.std, settings.get("std_floor_rel", 0.0)), 1.0),
        action_global_mean=_pad(acc.global_action.mean, 0.0),
        action_global_std=_pad(acc.global_action.std, 1.0),
        action_q01=_pad(np.percentile(action_rows, 1, axis=0), -1.0),
        action_q99=_pad(np.percentile(action_rows, 99, axis=0), 1.0),
        state_mean=_pad(acc.state.mean, 0.0),
        state_std=_pad(acc.state.std, 1.0),
        state_q01=_pad(np.percentile(state_rows, 1, axis=0), -1.0),
        state_q99=_pad(np.percentile(state_rows, 99, axis=0), 1.0),
        task_num_stages=stages,
        task_mean_length=mean_len,
        delta_mask=np.asarray(mask, dtype=bool).copy(),
        horizon=horizon,
        info=info,
    )


def write_stats(stats: NormStats, corr: ChunkCorrelation | None, meta_dir: str | os.PathLike) -> NormStats:
    """Write the npz, then the JSON that references it by sha256; returns stats pointing at the files."""
    meta_dir = Path(meta_dir)
    corr_path, digest = None, None
    if corr is not None:
        corr_path = meta_dir / CORRELATION_NPZ
        save_npz(
            corr_path,
            cholesky=corr.cholesky,
            spatial=corr.spatial,
            temporal=corr.temporal,
            regularization=np.float64(corr.regularization),
            num_chunks=np.int64(corr.num_chunks),
        )
        digest = _sha256(corr_path)
    stats = dataclasses.replace(stats, correlation_path=corr_path, correlation_sha256=digest)
    write_json(meta_dir / NORM_STATS_JSON, stats.to_json())
    return stats
