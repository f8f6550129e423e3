"""`behavior-lab stats data.root=DIR`: the Hydra config composes and the command writes the files."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from behavior_lab.cli import stats as stats_cli
from behavior_lab.data import layout
from behavior_lab.data.samples import ChunkSampleSource
from behavior_lab.data.stats import NormStats


def _cfg(*overrides):
    with initialize_config_module(config_module="behavior_lab.conf", version_base="1.3"):
        return compose("stats", overrides=list(overrides))


def test_config_defaults():
    cfg = _cfg()
    assert cfg.seed == 42 and cfg.sample_fraction == 0.1 and cfg.max_correlation_samples == 2_000_000
    assert cfg.fast.enabled is False and cfg.delta_actions is True


def test_stats_command_writes_stats_and_fast_tokenizer(dataset_copy, capsys):
    for f in (layout.NORM_STATS_FILE, layout.CORRELATION_FILE):
        (dataset_copy / f).unlink()
    cfg = _cfg(f"data.root={dataset_copy}", "progress=false", "fast.enabled=true", "stage_table={1: 7}")
    stats_cli.run(cfg)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"stats written to {dataset_copy / 'meta'}") and "fast_tokenizer/" in last
    stats = NormStats.load(dataset_copy)
    assert stats.correlation_cholesky.shape == (960, 960) and stats.task_num_stages[1] == 7
    assert (dataset_copy / layout.FAST_TOKENIZER_DIR).is_dir()
    src = ChunkSampleSource(dataset_copy, stats, 16, fast_tokenizer=True, progress=False)
    sample = src[5]
    assert sample["fast_tokens"].shape == (200,) and sample["fast_tokens"].dtype == np.int64
    assert sample["fast_mask"].dtype == bool and sample["fast_mask"].any()
    assert not sample["fast_tokens"][~sample["fast_mask"]].any()  # padding id 0 (spec §7.2)


def test_stats_command_requires_root():
    with pytest.raises(SystemExit, match="data.root is required"):
        stats_cli.run(_cfg())
