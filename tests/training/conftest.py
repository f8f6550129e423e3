"""Shared fixtures for the training tests: one small embedded-style dataset per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """2 tasks x 5 episodes x 60 frames, 64 px, with norm stats, correlation and a FAST tokenizer."""
    from behavior_lab.data.fast_samples import fit_fast_tokenizer_from_dataset
    from behavior_lab.data.stats import compute_stats
    from behavior_lab.data.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("train_ds") / "ds"
    make_synthetic_dataset(root, tasks=(0, 1), episodes_per_task=5, length=60, image_size=64, seed=0)
    # all chunks (not the seed's 10 %): with 10 episodes, 10 % of the chunks can leave a per-timestep
    # std at ~0 (gripper flips), and held-out frames then normalise to ~1e6
    stats = compute_stats(root, sample_fraction=1.0, progress=False)
    fit_fast_tokenizer_from_dataset(root, stats, sample_fraction=1.0, out_dir=root / "meta" / "fast_tokenizer", min_frequency=1)
    return root
