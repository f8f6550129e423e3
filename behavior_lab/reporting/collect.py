"""Collect per-episode results into one tidy table: one row per rollout.

Sources:
- folder trees of metrics JSONs (`{task}_{instance}_{rollout}.json`, ours or OmniGibson eval.py's),
  e.g. one folder per sweep cell; a folder may carry a `cell.json` describing the cell:
  `{"cell": str, "toggles": {name: bool | value}, "seed": int, "split": "public" | "heldout",
    "suite": "embedded" | "omnigibson", "episodes_per_task": int, ...}` — every key optional;
  it applies to all metrics files below it (the nearest one wins);
- ledger records (`behavior_lab.reporting.ledger`), the same per-episode metrics with the cell
  description alongside.

Columns: cell, <one column per toggle>, task, instance, rollout, seed, split, suite, q, success,
time_score, normalized_time, simulator_steps, simulator_time, {base,left,right}_distance,
normalized_{base,left,right}_distance, closest_approach (m: the hands' closest approach to any of
the task's objects and buttons) and grasp_events (assisted grasps that engaged) — embedded suite
only, NaN elsewhere and grasp_events NaN for tasks with nothing to grasp —, expected (episodes per
task declared for the cell, or NA), episode_seed, source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from behavior_lab.eval.scoring import (
    DISTANCE_PARTS,
    METRICS_NAME,
    EpisodeResult,
    MetricsFormatError,
    load_episode,
)

CELL_FILE = "cell.json"
SPLITS = ("public", "heldout")
RESULT_SUBDIRS = ("metrics", "json")  # ours / the official submission layout
BASE_COLUMNS = [
    "cell", "task", "instance", "rollout", "seed", "split", "suite", "q", "success", "time_score",
    "normalized_time", "simulator_steps", "simulator_time",
    *[f"{p}_distance" for p in DISTANCE_PARTS], *[f"normalized_{p}_distance" for p in DISTANCE_PARTS],
    "closest_approach", "grasp_events", "expected", "episode_seed", "source",
]
# Keys only our writer adds; a file with none of them came from OmniGibson's eval.py.
OUR_KEYS = {"success", "predicates", "config_hash", "ckpt_hash", "cell", "task", "instance", "rollout"}


@dataclass
class Results:
    """The tidy per-episode table plus what describes its columns."""

    frame: pd.DataFrame
    toggles: list[str] = field(default_factory=list)

    @property
    def cells(self) -> list[str]:
        return list(dict.fromkeys(self.frame["cell"]))

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(self.frame["task"]))

    def __len__(self) -> int:
        return len(self.frame)


def read_cell_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MetricsFormatError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(data, Mapping):
        raise MetricsFormatError(f"{path}: must be a JSON object")
    toggles = data.get("toggles", {})
    if not isinstance(toggles, Mapping):
        raise MetricsFormatError(f"{path}: key 'toggles' must be an object {{name: bool | value}}")
    split = data.get("split")
    if split is not None and split not in SPLITS:
        raise MetricsFormatError(f"{path}: key 'split' must be one of {SPLITS}, got {split!r}")
    return dict(data)


def _suite_of(ep: EpisodeResult, meta: Mapping) -> str:
    for src in (meta, ep.extra):
        for key in ("suite", "backend"):
            if src.get(key):
                return str(src[key])
    return "embedded" if OUR_KEYS & set(ep.extra) else "omnigibson"


def episode_row(ep: EpisodeResult, meta: Mapping, default_cell: str) -> dict:
    """One tidy row from an episode and the cell description that applies to it."""
    extra = ep.extra
    row = {
        "cell": str(meta.get("cell") or extra.get("cell") or default_cell),
        "task": ep.task,
        "instance": ep.instance,
        "rollout": ep.rollout,
        # The replicate seed comes from the cell description only: our per-episode `seed` is the
        # rollout's environment seed (kept as episode_seed), OmniGibson's files have none.
        "seed": int(meta.get("seed") or 0),
        "split": meta.get("split") or extra.get("split") or "public",
        "suite": _suite_of(ep, meta),
        "q": ep.q,
        "success": ep.success,
        "time_score": ep.time_score,
        "normalized_time": ep.normalized_time,
        "simulator_steps": ep.simulator_steps,
        "simulator_time": ep.simulator_time,
        "closest_approach": ep.closest_approach,
        "grasp_events": ep.grasp_events,
        "expected": meta.get("episodes_per_task"),
        "episode_seed": extra.get("seed"),
        "source": ep.path,
    }
    for p in DISTANCE_PARTS:
        row[f"{p}_distance"] = ep.agent_distance.get(p, math.nan)
        row[f"normalized_{p}_distance"] = ep.normalized_agent_distance.get(p, math.nan)
    for name, value in (meta.get("toggles") or {}).items():
        row[f"toggle::{name}"] = value
    return row


def _run_folder(metrics_file: Path) -> Path:
    parent = metrics_file.parent
    return parent.parent if parent.name in RESULT_SUBDIRS else parent


def _nearest_cell_file(folder: Path, root: Path, cache: dict) -> dict:
    if folder in cache:
        return cache[folder]
    candidate = folder / CELL_FILE
    if candidate.is_file():
        meta = read_cell_file(candidate)
    elif folder == root or root not in folder.parents:
        meta = {}  # never look above the results folder (its own run folder at most)
    else:
        meta = _nearest_cell_file(folder.parent, root, cache)
    cache[folder] = meta
    return meta


def collect_folder(root: str | Path) -> list[dict]:
    """Rows for every metrics JSON under `root` (any depth)."""
    root = Path(root).resolve()
    if not root.exists():
        raise FileNotFoundError(f"results folder {root} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.json") if METRICS_NAME.match(p.name))
    cache: dict = {}
    rows = []
    for f in files:
        run = _run_folder(f)
        meta = _nearest_cell_file(run, root, cache)
        rel = run.relative_to(root) if run != root and root in run.parents else None
        rows.append(episode_row(load_episode(f), meta, str(rel) if rel is not None else run.name))
    return rows


def rows_to_results(rows: Sequence[dict]) -> Results:
    """Assemble rows (from folders and/or ledgers) into the tidy table; checks for duplicates."""
    if not rows:
        raise ValueError("no per-episode results found (expected files named {task}_{instance}_{rollout}.json)")
    frame = pd.DataFrame(list(rows))
    toggle_cols = [c for c in frame.columns if c.startswith("toggle::")]
    toggles = [c.removeprefix("toggle::") for c in toggle_cols]
    clash = set(toggles) & set(BASE_COLUMNS)
    if clash:
        raise ValueError(f"toggle names collide with result columns: {sorted(clash)}")
    frame = frame.rename(columns=dict(zip(toggle_cols, toggles)))
    for c in BASE_COLUMNS:
        if c not in frame.columns:
            frame[c] = pd.NA
    frame = frame[["cell", *toggles, *BASE_COLUMNS[1:]]]
    frame["seed"] = frame["seed"].astype("int64")
    for c in ("instance", "rollout"):
        frame[c] = frame[c].astype("int64")
    frame["success"] = frame["success"].astype(bool)
    frame["expected"] = pd.to_numeric(frame["expected"], errors="coerce").astype("Int64")
    key = ["cell", "split", "seed", "task", "instance", "rollout"]
    dup = frame[frame.duplicated(key, keep=False)]
    if len(dup):
        first = dup.iloc[0]
        srcs = ", ".join(str(s) for s in dup.loc[(dup[key] == first[key]).all(axis=1), "source"])
        raise ValueError(
            f"duplicate episode for cell {first['cell']!r} seed {first['seed']} task {first['task']} "
            f"instance {first['instance']} rollout {first['rollout']} ({first['split']}): {srcs}. "
            "Give each result folder a cell.json with a distinct cell or seed."
        )
    return Results(frame=frame.sort_values(key, kind="stable").reset_index(drop=True), toggles=toggles)


def collect(paths: Iterable[str | Path] = (), records: Iterable[Mapping] = ()) -> Results:
    """Tidy table from result folders and ledger records (see `ledger.records_to_rows`)."""
    from behavior_lab.reporting.ledger import records_to_rows

    rows: list[dict] = []
    for p in paths:
        rows.extend(collect_folder(p))
    rows.extend(records_to_rows(records))
    return rows_to_results(rows)
