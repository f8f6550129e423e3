"""`behavior-lab report`: result folders (+ ledger) -> scores, figures, tables, report.md.

Outputs under `out/` (DESIGN §6 contract first):
  summary.csv    task, episodes, q_score, success_rate (+ cell, split, expected, CIs)
  overall.json   {"q_score", "task_sr", "num_tasks", secondary scores, CIs, ..., "cells": {...}}
  episodes.csv   the tidy per-episode table
  figures/       episodes_<cell>.png, task_bars_q.png, task_bars_sr.png, effects.png (grids)
  tables/        leaderboard, cells, per_task, effects as .md / .tex / .csv
  report.md      all of the above with the configuration and command that produced them
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from behavior_lab.reporting.aggregate import Bootstrap, CellScores, score_cells, sort_tasks_by_length
from behavior_lab.reporting.collect import Results, collect
from behavior_lab.reporting.effects import EffectSettings, toggle_effects
from behavior_lab.reporting.fig_effects import plot_effects
from behavior_lab.reporting.fig_episodes import plot_episode_grid
from behavior_lab.reporting.fig_task_bars import plot_task_bars
from behavior_lab.reporting.ledger import read_optuna_records
from behavior_lab.reporting.reference import demo_seconds, leaderboard_2025
from behavior_lab.reporting.report_md import write_report_md
from behavior_lab.reporting.table_format import Table
from behavior_lab.reporting.tables import (
    cells_table,
    diagnostics_table,
    effects_table,
    leaderboard_table,
    per_task_table,
)

SUMMARY_COLUMNS = ["task", "episodes", "q_score", "success_rate"]


@dataclass
class ReportSettings:
    """What `conf/report.yaml` holds (see there for the meaning of each key)."""

    results: list[str]
    out: str
    tasks: list[str] | None = None
    episodes_per_task: int | None = None
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    effects: EffectSettings = field(default_factory=EffectSettings)
    task_lengths: dict[str, float] | None = None
    dataset_root: str | None = None
    ledger: str | None = None
    ledger_study: str | None = None
    leaderboard_reference: str | None = None
    leaderboard_max_cells: int = 10
    max_episode_grids: int = 6

    def __post_init__(self):
        if isinstance(self.results, (str, os.PathLike)):
            self.results = [str(self.results)]
        if not self.results and not self.ledger:
            raise ValueError("report needs results=DIR (or a list of DIRs) and/or ledger=<optuna storage URL>")
        if not self.out:
            raise ValueError("report needs out=DIR")
        if self.episodes_per_task is not None and self.episodes_per_task <= 0:
            raise ValueError(f"episodes_per_task must be > 0 (or null to infer), got {self.episodes_per_task}")


@dataclass
class ReportOutput:
    out: Path
    results: Results
    scores: CellScores
    effects: pd.DataFrame
    figures: list[Path]
    tables: dict[str, Table]
    overall: dict


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "run"


def json_safe(obj):
    """NaN/inf -> null and numpy scalars -> Python numbers, so overall.json is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _primary_split(overall: pd.DataFrame) -> str:
    splits = list(overall["split"].unique())
    return "public" if "public" in splits else splits[0]


def _overall_json(scores: CellScores) -> dict:
    """Top level: the best cell of the primary split (the only cell for a single run); all cells
    under "cells"."""
    split = _primary_split(scores.overall)
    ranked = scores.overall[scores.overall["split"] == split].sort_values("q_score", ascending=False, kind="stable")
    best = ranked.iloc[0]["cell"]
    out = dict(scores.summaries[(best, split)].overall_dict())
    out.update({"cell": best, "split": split,
                "cell_rule": "the only cell" if len(scores.overall["cell"].unique()) == 1
                else "highest q_score on the primary split"})
    cells: dict[str, dict] = {}
    for (cell, sp), summ in scores.summaries.items():
        cells.setdefault(str(cell), {})[sp] = summ.overall_dict()
    out["cells"] = cells
    return out


def _summary_frame(scores: CellScores, task_order: Sequence[str]) -> pd.DataFrame:
    t = scores.tasks.copy()
    order = {name: i for i, name in enumerate(task_order)}
    t["_o"] = t["task"].map(order)
    t = t.sort_values(["cell", "split", "_o"], kind="stable").drop(columns="_o")
    extra = ["cell", "split", "expected", "q_ci_low", "q_ci_high", "sr_ci_low", "sr_ci_high", "time_score"]
    return t[SUMMARY_COLUMNS + extra]


def build_report(settings: ReportSettings, config_yaml: str = "", command: str = "",
                 progress: Callable[[str], None] | None = None) -> ReportOutput:
    """Everything `behavior-lab report` writes; `progress` receives one line per stage."""
    say = progress or (lambda _msg: None)
    out = Path(settings.out)
    records = read_optuna_records(settings.ledger, settings.ledger_study) if settings.ledger else []
    say(f"collecting results from {', '.join(settings.results) or '-'}" + (f" + ledger {settings.ledger}" if records else ""))
    results = collect(settings.results, records)
    say(f"{len(results)} episodes, {len(results.cells)} cell(s), {len(results.tasks)} task(s); scoring")
    notes: list[str] = []
    if settings.tasks:
        dropped = sorted(set(results.frame["task"]) - set(settings.tasks))
        if dropped:
            notes.append(f"Episodes of tasks outside `tasks` were left out: {', '.join(dropped)}.")
            results.frame = results.frame[results.frame["task"].isin(settings.tasks)].reset_index(drop=True)
        if results.frame.empty:
            raise ValueError(f"no episodes of the configured tasks {settings.tasks} in {settings.results}")
    scores = score_cells(results, settings.tasks, settings.episodes_per_task, settings.bootstrap)
    seconds = demo_seconds(settings.task_lengths, settings.dataset_root)
    task_order = sort_tasks_by_length(scores.task_order, seconds)
    effects = toggle_effects(scores.per_seed, results.toggles, settings.effects, episodes=results.frame)

    # --- numbers -------------------------------------------------------------------------------
    (out / "figures").mkdir(parents=True, exist_ok=True)
    _summary_frame(scores, task_order).to_csv(out / ".summary.csv.tmp", index=False)
    os.replace(out / ".summary.csv.tmp", out / "summary.csv")
    overall = _overall_json(scores)
    _write_text(out / "overall.json", json.dumps(json_safe(overall), indent=2, allow_nan=False) + "\n")
    results.frame.to_csv(out / ".episodes.csv.tmp", index=False)
    os.replace(out / ".episodes.csv.tmp", out / "episodes.csv")

    # --- figures -------------------------------------------------------------------------------
    say("drawing figures")
    figures: list[Path] = []
    splits = list(scores.overall["split"].unique())
    primary = _primary_split(scores.overall)
    ranked = scores.overall[scores.overall["split"] == primary].sort_values("q_score", ascending=False, kind="stable")
    grid_cells = list(ranked["cell"])[: settings.max_episode_grids]
    stems: dict[str, str] = {}  # cell -> file stem, unique even when two names slug alike
    for cell in grid_cells:
        stem = slug(cell)
        while stem in stems.values():
            stem += "_"
        stems[cell] = stem
        for split in splits:
            if (cell, split) not in scores.summaries:
                continue
            eps = results.frame[(results.frame["cell"] == cell) & (results.frame["split"] == split)]
            summ = scores.summaries[(cell, split)]
            columns = max(t.expected for t in summ.tasks)
            suffix = "" if len(splits) == 1 else f"_{split}"
            figures.append(plot_episode_grid(
                eps, task_order, columns, summ, seconds,
                title=f"{cell} ({split}, {eps['seed'].nunique()} seed(s), {columns} episodes per task)",
                path=out / "figures" / f"episodes_{stems[cell]}{suffix}.png",
            ))
    for split in splits:
        suffix = "" if len(splits) == 1 else f"_{split}"
        t_split = scores.tasks[scores.tasks["split"] == split]
        o_split = scores.overall[scores.overall["split"] == split]
        for metric, short in (("q_score", "q"), ("success_rate", "sr")):
            figures.append(plot_task_bars(
                t_split, o_split, task_order, metric, out / "figures" / f"task_bars_{short}{suffix}.png",
                title=f"Per-task {'q-score' if short == 'q' else 'success rate'} per cell ({split})",
            ))
        e_split = effects[effects["split"] == split]
        if len(e_split):
            figures.append(plot_effects(e_split, out / "figures" / f"effects{suffix}.png",
                                        title=f"Innovation effects ({split})"))

    # --- tables --------------------------------------------------------------------------------
    say("writing tables and report.md")
    tables = {
        "leaderboard": leaderboard_table(scores.overall, leaderboard_2025(settings.leaderboard_reference),
                                         settings.leaderboard_max_cells),
        "cells": cells_table(scores.overall, results.toggles),
        "per_task": per_task_table(scores.tasks, task_order, seconds),
    }
    if len(effects):
        tables["effects"] = effects_table(effects)
    diagnostics = diagnostics_table(results.frame, task_order)
    if diagnostics is not None:
        tables["diagnostics"] = diagnostics
    for table in tables.values():
        table.write(out / "tables")

    write_report_md(out, overall, tables, figures, results, config_yaml, command, notes)
    return ReportOutput(out=out, results=results, scores=scores, effects=effects, figures=figures,
                        tables=tables, overall=overall)


def settings_from_mapping(cfg: Mapping) -> ReportSettings:
    """ReportSettings from the (resolved, plain-dict) report config."""
    boot = cfg.get("bootstrap") or {}
    eff = cfg.get("effects") or {}
    lb = cfg.get("leaderboard") or {}
    figs = cfg.get("figures") or {}
    results = cfg.get("results")
    if results is None:
        results = []
    return ReportSettings(
        results=[str(results)] if isinstance(results, (str, os.PathLike)) else [str(r) for r in results],
        out=str(cfg.get("out") or ""),
        tasks=list(cfg["tasks"]) if cfg.get("tasks") else None,
        episodes_per_task=cfg.get("episodes_per_task"),
        bootstrap=Bootstrap(n=int(boot.get("resamples", 2000)), seed=int(boot.get("seed", 0)),
                            ci=float(boot.get("ci", 0.95))),
        effects=EffectSettings(n_boot=int(boot.get("resamples", 2000)), n_perm=int(eff.get("permutations", 10000)),
                               seed=int(boot.get("seed", 0)), ci=float(boot.get("ci", 0.95)),
                               interactions=bool(eff.get("interactions", True)),
                               min_units=int(eff.get("min_units", 5))),
        task_lengths=dict(cfg["task_lengths"]) if cfg.get("task_lengths") else None,
        dataset_root=cfg.get("dataset_root"),
        ledger=cfg.get("ledger"),
        ledger_study=cfg.get("ledger_study"),
        leaderboard_reference=lb.get("reference"),
        leaderboard_max_cells=int(lb.get("max_cells", 10)),
        max_episode_grids=int(figs.get("max_episode_grids", 6)),
    )
