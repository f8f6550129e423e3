"""Per-task checkpoint switching (spec §12.5, §13.4): map parsing, routing, one model in memory."""

from __future__ import annotations

import json

import numpy as np
import pytest
from .runtime_fakes import ScriptedPredictor, make_obs

from behavior_lab.policy.observation import ObservationError
from behavior_lab.policy.runtime import PolicyRuntime
from behavior_lab.policy.switching import TaskCheckpointSwitcher, read_task_checkpoint_map

SEED_MAP = {
    "checkpoints": {
        "checkpoint_4": {"path": "/m/c4", "tasks": [40]},
        "checkpoint_1": {"path": "/m/c1", "tasks": [2, 3, 5]},
    }
}


def test_read_seed_format_map(tmp_path):
    f = tmp_path / "task_checkpoint_mapping.json"
    f.write_text(json.dumps(SEED_MAP))
    assert read_task_checkpoint_map(f) == {40: "/m/c4", 2: "/m/c1", 3: "/m/c1", 5: "/m/c1"}
    dup = {"checkpoints": {"a": {"path": "x", "tasks": [1]}, "b": {"path": "y", "tasks": [1]}}}
    with pytest.raises(ValueError, match="more than one checkpoint"):
        read_task_checkpoint_map(dup)
    with pytest.raises(ValueError, match="needs 'path' and 'tasks'"):
        read_task_checkpoint_map({"checkpoints": {"a": {"tasks": [1]}}})
    with pytest.raises(FileNotFoundError):
        read_task_checkpoint_map(tmp_path / "missing.json")


def _chunk_by_ckpt(offset):
    return lambda req, call, row: np.tile(req.state, (30, 1)) + offset


def test_switcher_routes_by_task_and_keeps_one_model_loaded():
    loaded = []

    def load(path):
        loaded.append(path)
        return ScriptedPredictor(_chunk_by_ckpt({"/m/c1": 1.0, "/m/c4": 4.0, "/m/default": 9.0}[path]))

    sw = TaskCheckpointSwitcher(read_task_checkpoint_map(SEED_MAP), load, default_path="/m/default")
    rt = PolicyRuntime(sw)
    a = rt.act([make_obs(task=2)])[0]
    assert loaded == ["/m/c1"] and list(sw.loaded) == ["/m/c1"]
    b = rt.act([make_obs(task=40)])[0]  # task change: new chunk from checkpoint 4, c1 unloaded
    assert loaded == ["/m/c1", "/m/c4"] and list(sw.loaded) == ["/m/c4"]
    assert rt.sessions[0].replans == 1 and rt.sessions[0].stage == 0
    c = rt.act([make_obs(task=7)])[0]  # unmapped: default checkpoint
    assert loaded[-1] == "/m/default"
    assert a[10] - b[10] == pytest.approx(-3.0) and c[10] - b[10] == pytest.approx(5.0)


def test_switcher_groups_a_batch_and_rejects_unmapped_without_default():
    loads = []
    sw = TaskCheckpointSwitcher({2: "/m/c1", 40: "/m/c4"}, lambda p: loads.append(p) or ScriptedPredictor(), max_loaded=2)
    rt = PolicyRuntime(sw)
    out = rt.act([make_obs(task=2), make_obs(task=40), make_obs(task=2)])
    assert out.shape == (3, 23) and sorted(loads) == ["/m/c1", "/m/c4"]
    with pytest.raises(ObservationError, match="not in the task -> checkpoint map"):
        PolicyRuntime(sw).act([make_obs(task=9)])
