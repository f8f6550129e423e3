"""Unit ids, designs and the planner: deterministic ids, 64 cells -> 16 trainings, the split."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sweep_fakes import compose_sweep

from behavior_lab.sweep.app import build_plan, registry_from_cfg
from behavior_lab.sweep.design import Cell, Design, design_from_cfg
from behavior_lab.sweep.planner import PlanSettings, plan
from behavior_lab.sweep.units import Unit, canonical_json, format_override_value, unit_id

SIX = ["correlated_noise", "multi_sample_fm", "kv_transform", "system2", "inpainting", "spline_speedup"]


@pytest.fixture(scope="module")
def base_cfg():
    return compose_sweep(["ablation=full_grid", "tasks=[turning_on_radio,picking_up_trash]"])


def test_unit_id_is_canonical_and_process_independent():
    a = {"train": {"b": 1, "a": [1, 2.5, True]}, "seed": 0}
    b = {"seed": 0, "train": {"a": (1, 2.5, True), "b": 1}}
    assert unit_id(a) == unit_id(b)
    assert canonical_json(a) == '{"seed":0,"train":{"a":[1,2.5,true],"b":1}}'
    assert unit_id({**a, "seed": 1}) != unit_id(a)
    code = (
        "from behavior_lab.sweep.units import unit_id; "
        "print(unit_id({'train': {'b': 1, 'a': [1, 2.5, True]}, 'seed': 0}))"
    )
    for salt in ("1", "2"):  # Python's hash() differs per process; ours must not
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == unit_id(a)
    with pytest.raises(ValueError, match="non-finite"):
        unit_id({"x": float("nan")})


def test_format_override_value():
    assert format_override_value(True) == "true"
    assert format_override_value([0.5, "a"]) == "[0.5,a]"
    assert format_override_value(None) == "null"
    assert format_override_value("two words") == "'two words'"


def test_full_grid_is_64_cells_16_trainings(base_cfg):
    p, registry = build_plan(base_cfg)
    assert len(p.cells) == 64 and len({c.name for c in p.cells}) == 64
    assert len(p.trains) == 16  # 2^4 training-relevant toggles
    assert len(p.evals) == 64 * 2  # every cell x task, each exactly once
    for t in p.trains:
        evs = p.evals_of(t.id)
        assert len(evs) == 4 * 2  # 2^2 inference combinations x 2 tasks
        assert {u.task for u in evs} == {"turning_on_radio", "picking_up_trash"}
    # every cell's training part maps to the one training with the same training toggles
    for cell in p.cells:
        train_part = cell.part(registry, "train")
        assert set(train_part) == {f"toggle:{n}" for n in SIX[:4]}
        assert set(cell.part(registry, "inference")) == {"toggle:inpainting", "toggle:spline_speedup"}


def test_trainings_do_not_depend_on_names_or_inference(base_cfg):
    registry = registry_from_cfg(base_cfg)
    s = PlanSettings(tasks=("a",), data_root="/data")
    on = {n: True for n in SIX}
    p1 = plan([Cell("x", on)], registry, s)
    p2 = plan([Cell("renamed", {**on, "inpainting": False, "spline_speedup": False})], registry, s)
    assert p1.trains[0].id == p2.trains[0].id
    assert p1.evals[0].id != p2.evals[0].id
    p3 = plan(
        [Cell("x", on)],
        registry,
        PlanSettings(tasks=("a",), data_root="/data", train_overrides=("trainer.max_steps=5",)),
    )
    assert p3.trains[0].id != p1.trains[0].id  # a different budget is a different training


def test_seeds_multiply_trainings_and_data_unit(base_cfg):
    cfg = {**base_cfg, "seeds": [0, 1, 2]}
    p, _ = build_plan(cfg)
    assert len(p.trains) == 48 and len(p.evals) == 64 * 2 * 3
    assert p.data is not None and all(t.depends_on == p.data.id for t in p.trains)
    assert any("seed=2" in t.overrides for t in p.trains)
    cfg = {**base_cfg, "data": {**base_cfg["data"], "root": "/some/dataset"}}
    p, _ = build_plan(cfg)
    assert p.data is None and all(t.depends_on is None for t in p.trains)


@pytest.mark.parametrize(
    "ablation,cells,trains",
    [
        ("full_grid", 64, 16),
        ("leave_one_out", 7, 5),
        ("add_one_in", 7, 5),
        ("smoke", 4, 2),
        ("embedded_default", 7, 5),
        ("training_pairs", 6, 6),
        ("noise_beta", 6, 3),
    ],
)
def test_every_ablation_composes_and_plans(ablation, cells, trains):
    cfg = compose_sweep([f"ablation={ablation}", "tasks=[turning_on_radio]"])
    p, _ = build_plan(cfg)
    assert (len(p.cells), len(p.trains)) == (cells, trains)
    assert len(p.evals) == cells  # one task, one seed, every cell its own inference setting


def test_search_ablation_composes():
    cfg = compose_sweep(["ablation=search_continuous", "tasks=[turning_on_radio]"])
    from behavior_lab.sweep.search import search_settings

    s = search_settings(cfg["sweep"]["search"], "search_continuous")
    assert set(s.params) == {
        "innovation.correlated_noise.beta",
        "innovation.multi_sample_fm.num_samples",
        "innovation.inpainting.time_threshold",
    }


def test_leave_one_out_and_custom_cells(base_cfg):
    registry = registry_from_cfg(base_cfg)
    loo = Design("leave_one_out", tuple(SIX), {}, {}).cells(registry)
    assert loo[0].name == "all" and all(loo[0].toggles.values())
    assert {c.name for c in loo[1:]} == {"all-cn", "all-msfm", "all-kv", "all-s2", "all-inp", "all-spl"}
    custom = design_from_cfg(
        {
            "mode": "custom",
            "toggles": ["correlated_noise", "inpainting"],
            "fixed": {"system2": True},
            "cells": [{"name": "a"}, {"toggles": {"inpainting": True}}],
        }
    ).cells(registry)
    assert custom[0].toggles == {"system2": True, "correlated_noise": False, "inpainting": False}
    assert custom[1].name == "s2+inp" and custom[1].toggles["inpainting"] is True


def test_params_stage_split(base_cfg):
    registry = registry_from_cfg(base_cfg)
    assert registry.param_stage("innovation.inpainting.time_threshold") == "inference"
    assert registry.param_stage("innovation.correlated_noise.beta") == "train"
    cells = Design(
        "grid",
        ("inpainting",),
        {"innovation.correlated_noise.beta": (0.3, 0.6), "innovation.inpainting.time_threshold": (0.2, 0.4)},
        {},
    ).cells(registry)
    p = plan(cells, registry, PlanSettings(tasks=("a",), data_root="/d"))
    assert len(cells) == 8 and len(p.trains) == 2 and len(p.evals) == 8


def test_helpful_errors(base_cfg):
    registry = registry_from_cfg(base_cfg)
    with pytest.raises(KeyError, match="Did you mean correlated_noise"):
        Design("grid", ("corelated_noise",), {}, {}).cells(registry)
    with pytest.raises(ValueError, match="Valid modes"):
        Design("gird", (), {}, {})
    with pytest.raises(ValueError, match="tasks is empty"):
        PlanSettings(tasks=())
    with pytest.raises(KeyError, match="valid keys"):
        design_from_cfg({"mode": "grid", "toggle": []})
    with pytest.raises(ValueError, match="unit kind"):
        Unit("bogus", {})


def test_privileged_obs_toggle_is_a_training_part_and_the_suite_version_keys_the_dataset(base_cfg, monkeypatch):
    """The privileged observation mode (DESIGN §8 lever 5) is a train-stage toggle whose overrides
    set model.task_info_dim; the generated dataset's unit id changes with the embedded suite version,
    so a sweep never reuses demonstrations recorded by an older suite."""
    registry = registry_from_cfg(base_cfg)
    t = registry.toggle("privileged_obs")
    assert t.stage == "train" and t.on == ("model.task_info_dim=24",) and t.off == ("model.task_info_dim=0",)
    cells = Design("leave_one_out", ("system2", "privileged_obs"), {}, {}).cells(registry)
    p = plan(cells, registry, PlanSettings(tasks=("turning_on_radio",), data_root="/d"))
    assert len(p.trains) == 3
    assert sum("model.task_info_dim=24" in u.overrides for u in p.trains) == 2
    import behavior_lab.sim

    before = build_plan(base_cfg)[0].data.id
    monkeypatch.setattr(behavior_lab.sim, "SUITE_VERSION", behavior_lab.sim.SUITE_VERSION + 1)
    bumped = build_plan(base_cfg)[0].data.id
    assert bumped != before
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9" if name == "mujoco" else real(name))
    assert build_plan(base_cfg)[0].data.id != bumped  # another MuJoCo release records anew
