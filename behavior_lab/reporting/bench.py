"""Reporting benchmark: a full `behavior-lab report` of a 64-cell x 5-task x 10-episode sweep folder."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from behavior_lab.benchmarks import register
from behavior_lab.reporting.aggregate import Bootstrap
from behavior_lab.reporting.collect import collect
from behavior_lab.reporting.effects import EffectSettings
from behavior_lab.reporting.report import ReportSettings, build_report
from behavior_lab.reporting.synthetic import DEFAULT_EFFECTS, DEFAULT_TASKS, write_grid


@register("reporting.report")
def bench_report(quick: bool = False) -> dict:
    """Seconds to report a 64-cell (6 toggles) x 5-task x 10-episode result folder (3,200 JSONs).

    quick: same folder, 200 bootstrap resamples and 1,000 permutations instead of 2,000 / 10,000.
    """
    n_boot, n_perm = (200, 1000) if quick else (2000, 10000)
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        root = Path(tmp) / "sweep"
        write_grid(root, DEFAULT_EFFECTS, DEFAULT_TASKS, episodes=10, seeds=(0,))
        t0 = time.perf_counter()
        results = collect([root])
        collect_s = time.perf_counter() - t0
        settings = ReportSettings(
            results=[str(root)], out=str(Path(tmp) / "report"),
            bootstrap=Bootstrap(n=n_boot), effects=EffectSettings(n_boot=n_boot, n_perm=n_perm),
        )
        t0 = time.perf_counter()
        out = build_report(settings)
        total_s = time.perf_counter() - t0
    return {
        "report_s": round(total_s, 3),
        "collect_s": round(collect_s, 3),
        "episodes": len(results),
        "cells": len(results.cells),
        "figures": len(out.figures),
        "bootstrap_resamples": n_boot,
    }
