"""`behavior-lab stats data.root=DIR`: normalisation stats + action correlation (+ FAST tokenizer).

Thin wrapper: the dispatcher composes `conf/stats.yaml`; this calls `data.stats.compute_stats` and,
when `fast.enabled`, the FAST tokenizer fit hook. Last line printed: where the output is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from behavior_lab.data.schema import DELTA_ACTION_MASK
from omegaconf import DictConfig, OmegaConf


def fit_fast_tokenizer(root: Path, stats, cfg: DictConfig) -> Path:
    """FAST tokenizer fit hook (spec §7.1): same chunk pipeline and seed as the stats pass,
    clipped to the stats' action q01/q99; saved to DIR/meta/fast_tokenizer/."""
    from behavior_lab.data import layout
    from behavior_lab.data.fast_samples import fit_fast_tokenizer_from_dataset

    out_dir = root / layout.FAST_TOKENIZER_DIR
    fit_fast_tokenizer_from_dataset(
        root,
        stats,
        seed=int(cfg.seed),
        sample_fraction=float(cfg.sample_fraction),
        tasks=_tasks(cfg),
        dims=str(cfg.fast.encoded_dims),
        scale=float(cfg.fast.scale),
        vocab_size=int(cfg.fast.vocab_size),
        min_frequency=int(cfg.fast.min_frequency),
        horizon=int(cfg.horizon),
        pretokenizer=str(cfg.fast.pretokenizer),
        max_chunks=None if cfg.fast.max_chunks is None else int(cfg.fast.max_chunks),
        # the tokenizer must see the same action representation as the stats (spec §8 ablation)
        delta_mask=DELTA_ACTION_MASK if bool(cfg.delta_actions) else np.zeros(23, dtype=bool),
        out_dir=out_dir,
    )
    return out_dir


def _tasks(cfg: DictConfig):
    tasks = cfg.data.get("tasks")
    if tasks is None:
        return None
    tasks = OmegaConf.to_container(tasks) if not isinstance(tasks, (str, int)) else [tasks]
    return list(tasks)


def run(cfg: DictConfig) -> None:
    from behavior_lab.data.stats import compute_stats

    if OmegaConf.is_missing(cfg.data, "root"):
        raise SystemExit("error: data.root is required: behavior-lab stats data.root=DIR")
    root = Path(str(cfg.data.root)).expanduser()
    table = cfg.get("stage_table")
    stats = compute_stats(
        root,
        tasks=_tasks(cfg),
        seed=int(cfg.seed),
        sample_fraction=float(cfg.sample_fraction),
        max_correlation_samples=None if cfg.max_correlation_samples is None else int(cfg.max_correlation_samples),
        max_quantile_samples=None if cfg.max_quantile_samples is None else int(cfg.max_quantile_samples),
        horizon=int(cfg.horizon),
        delta_actions=bool(cfg.delta_actions),
        correlation=bool(cfg.correlation),
        std_floor_rel=float(cfg.get("std_floor_rel", 0.0)),
        stage_table=None if table is None else {int(k): int(v) for k, v in OmegaConf.to_container(table).items()},
        progress=bool(cfg.progress),
    )
    info = stats.info
    print(
        f"stats over {info['num_episodes']} episodes, {info['num_frames']} frames, {info['num_chunks']} sampled chunks"
        + ("" if stats.correlation_path is None else f"; correlation from {info['num_correlation_chunks']} chunks")
    )
    outputs = ["norm_stats.json"] + ([] if stats.correlation_path is None else ["action_correlation.npz"])
    if cfg.fast.enabled:
        fit_fast_tokenizer(root, stats, cfg)
        outputs.append("fast_tokenizer/")
    print(f"stats written to {root / 'meta'} ({', '.join(outputs)})")
