"""Benchmark registry: the home of every speed/memory figure the project reports.

Benchmarks live next to the code they measure, in `behavior_lab/<package>/bench.py`, and register
themselves with `@register("<package>.<name>")`. A benchmark is `fn(quick: bool = False) -> dict`
returning flat figures ({"samples_per_s": 2345.6, ...}); it builds whatever data it needs in a
temporary directory. `behavior-lab bench [name ...]` runs them, prints a table and writes JSON.
Figures are never asserted in tests (timings on a shared 2-core machine are noisy).
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import platform
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

BenchFn = Callable[..., dict]

# Packages that may carry a bench.py module; missing modules are skipped (not every package has one).
BENCH_PACKAGES = ("data", "sim", "models", "training", "policy", "serving", "eval", "sweep", "reporting")


@dataclass(frozen=True)
class Benchmark:
    name: str
    fn: BenchFn
    doc: str


_REGISTRY: dict[str, Benchmark] = {}


def register(name: str) -> Callable[[BenchFn], BenchFn]:
    """Decorator: register `fn` under `name` ("package.what")."""

    def deco(fn: BenchFn) -> BenchFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"benchmark {name!r} registered twice ({_REGISTRY[name].fn} and {fn})")
        _REGISTRY[name] = Benchmark(name, fn, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "")
        return fn

    return deco


def discover() -> dict[str, Benchmark]:
    """Import every `behavior_lab.<pkg>.bench` module that exists and return the registry."""
    for pkg in BENCH_PACKAGES:
        modname = f"behavior_lab.{pkg}.bench"
        try:
            importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
    return dict(sorted(_REGISTRY.items()))


def select(names: list[str] | None) -> list[Benchmark]:
    """Exact names or prefixes ("data" selects all data.*). Unknown names list the valid ones."""
    reg = discover()
    if not names:
        return list(reg.values())
    chosen: list[Benchmark] = []
    for n in names:
        hits = [b for k, b in reg.items() if k == n or k.startswith(n + ".")]
        if not hits:
            near = difflib.get_close_matches(n, list(reg), n=3)
            hint = f" Did you mean: {', '.join(near)}?" if near else ""
            raise KeyError(f"unknown benchmark {n!r}.{hint} Available: {', '.join(reg) or '(none)'}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def run(names: list[str] | None, quick: bool = False, out: str | Path | None = None) -> dict[str, Any]:
    """Run benchmarks, print a table, write JSON; returns {"machine":..., "results": {name: figures}}."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    benches = select(names)
    results: dict[str, Any] = {}
    for b in benches:
        console.print(f"[bold]bench[/bold] {b.name} ...")
        t0 = time.perf_counter()
        try:
            figures = dict(b.fn(quick=quick))
            figures["_wall_s"] = round(time.perf_counter() - t0, 2)
        except Exception as e:  # a failing benchmark is reported, the others still run
            figures = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=5)}
        results[b.name] = figures
    table = Table(title="behavior-lab bench" + (" (quick)" if quick else ""))
    table.add_column("benchmark")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, figs in results.items():
        for k, v in figs.items():
            if k == "traceback":
                continue
            table.add_row(name, k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    report = {"machine": machine_info(), "quick": quick, "results": results,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "bench.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2, default=str))
        os.replace(tmp, path)
        report["path"] = str(path)
    return report
