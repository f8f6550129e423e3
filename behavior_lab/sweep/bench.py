"""Benchmark `sweep.plan`: planning + ledger overhead of the 64-cell full grid.

What the sweep itself costs on top of the stages: composing the design, planning (64 cells ->
16 trainings -> 64 x tasks evaluations), and the ledger bookkeeping of every unit (claim,
heartbeat, result attrs, COMPLETE) in a fresh SQLite study, through the real SweepDriver with
a runner whose stages return at once (writing the files the driver reads). Then a rerun over
the finished ledger, which must run nothing: the cost of resuming.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from behavior_lab.benchmarks import register

SIX = ("correlated_noise", "multi_sample_fm", "kv_transform", "system2", "inpainting", "spline_speedup")
TOGGLES = {
    name: {
        "stage": "inference" if name in ("inpainting", "spline_speedup") else "train",
        "code": name[:6],
        "enable": [f"innovation/{name}=on"],
        "disable": [f"innovation/{name}=off"],
    }
    for name in SIX
}


class _InstantStages:
    """Stages that finish at once, so only the sweep's own overhead is timed."""

    def prepare_data(self, tasks, episodes_per_task, seed, overrides, out, stats_overrides=()):
        return Path(out)

    def train(self, overrides, data_root, out):
        return Path(out)

    def eval(self, ckpt, overrides, tasks, episodes_per_task, out):
        metrics = Path(out) / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        for task in tasks:
            for i in range(episodes_per_task):
                body = {"q_score": {"final": 0.5}, "time": {"simulator_steps": 10, "normalized_time": 1.0}}
                (metrics / f"{task}_{i}_0.json").write_text(json.dumps(body))
        return metrics

    def report(self, results, out, overrides=()):
        return Path(out)


@register("sweep.plan")
def bench_plan(quick: bool = False) -> dict:
    """Planning + ledger overhead for the 64-cell grid (SQLite ledger, no-op stages)."""
    from behavior_lab.sweep.design import Design, Registry
    from behavior_lab.sweep.driver import SweepDriver
    from behavior_lab.sweep.ledger import Ledger
    from behavior_lab.sweep.planner import PlanSettings, plan

    tasks = (
        ("turning_on_radio",)
        if quick
        else ("turning_on_radio", "picking_up_trash", "putting_away_Halloween_decorations")
    )
    registry = Registry.from_dict(TOGGLES, ("policy.",))
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        cells = Design("grid", SIX, {}, {}).cells(registry)
        p = plan(cells, registry, PlanSettings(tasks=tasks, seeds=(0,), episodes_per_task=2, data_root="/dataset"))
    plan_ms = (time.perf_counter() - t0) / reps * 1e3
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.db'}", heartbeat_s=30)
        driver = SweepDriver(p, ledger, _InstantStages(), Path(tmp))
        t1 = time.perf_counter()
        outcome = driver.run()
        first_s = time.perf_counter() - t1
        assert not outcome.failed, outcome.failed
        t2 = time.perf_counter()
        again = SweepDriver(p, Ledger(ledger.url, heartbeat_s=30), _InstantStages(), Path(tmp)).run()
        rerun_s = time.perf_counter() - t2
        assert sum(again.ran.values()) == 0
        t3 = time.perf_counter()
        states = ledger.states()
        refresh_ms = (time.perf_counter() - t3) * 1e3
    units = len(p.trains) + len(p.evals)
    return {
        "cells": len(p.cells),
        "trainings": len(p.trains),
        "evaluations": len(p.evals),
        "tasks": len(tasks),
        "plan_ms": round(plan_ms, 2),
        "ledger_first_run_s": round(first_s, 3),
        "ledger_ms_per_unit": round(first_s / units * 1e3, 2),
        "rerun_nothing_to_do_s": round(rerun_s, 3),
        "ledger_refresh_ms": round(refresh_ms, 1),
        "ledger_trials": len(states),
    }
