"""Fixtures for the sweep tests (helpers live in sweep_fakes.py: `conftest` is not importable by name)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def calls(tmp_path) -> Path:
    return tmp_path / "calls.jsonl"
