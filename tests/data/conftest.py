"""Tiny synthetic BEHAVIOR-layout datasets shared by the data tests (2 tasks x 2 episodes, 32 px)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from behavior_lab.data.stats import compute_stats
from behavior_lab.data.synthetic import make_synthetic_dataset

LENGTHS = [40, 52, 45, 36]  # one per episode: tasks 0, 0, 1, 1


@pytest.fixture(scope="session")
def lengths() -> list[int]:
    return list(LENGTHS)


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory) -> Path:
    """H.264 dataset with stats; read-only for tests (copy it with `dataset_copy` to modify)."""
    root = tmp_path_factory.mktemp("ds") / "h264"
    make_synthetic_dataset(root, tasks=(0, 1), episodes_per_task=2, length=LENGTHS, image_size=32, seed=1)
    compute_stats(root, progress=False)
    return root


@pytest.fixture
def dataset_copy(dataset_root, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(dataset_root, dst, ignore=shutil.ignore_patterns(".cache"))
    return dst
