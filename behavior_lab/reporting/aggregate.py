"""Scores per cell (and per cell x seed) from the tidy table, via `behavior_lab.eval.scoring`.

Denominators: every cell is scored on the same task list (the configured tasks, else every task
seen anywhere in the table), so a cell that lost a whole task scores 0 there. Episodes expected per
task and seed: the cell's declared `episodes_per_task` (cell.json / ledger), else the configured
value, else the most episodes any (cell, seed, task) of the same split has. Seeds of one cell are
pooled as replicates (expected x number of seeds the cell ran).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from behavior_lab.eval.scoring import DISTANCE_PARTS, EpisodeResult, ScoreSummary, score_episodes
from behavior_lab.reporting.collect import Results

GROUP = ["cell", "split"]


@dataclass(frozen=True)
class Bootstrap:
    n: int = 2000
    seed: int = 0
    ci: float = 0.95


def frame_to_episodes(frame: pd.DataFrame) -> list[EpisodeResult]:
    seeds = {s: i for i, s in enumerate(sorted(frame["seed"].unique()))}
    out = []
    for r in frame.itertuples(index=False):
        out.append(EpisodeResult(
            task=r.task, instance=int(r.instance), rollout=int(r.rollout), q=float(r.q),
            simulator_steps=r.simulator_steps, simulator_time=r.simulator_time,
            normalized_time=r.normalized_time,
            agent_distance={p: getattr(r, f"{p}_distance") for p in DISTANCE_PARTS},
            normalized_agent_distance={p: getattr(r, f"normalized_{p}_distance") for p in DISTANCE_PARTS},
            path=str(r.source), replicate=seeds[r.seed],
        ))
    return out


def _inferred_expected(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame.groupby(["split", "cell", "seed", "task"]).size()
    return {split: int(c.max()) for split, c in counts.groupby(level="split")}


def _expected_for(group: pd.DataFrame, split: str, configured: int | None, inferred: dict) -> int:
    declared = group["expected"].dropna()
    if len(declared):
        return int(declared.iloc[0])
    return int(configured) if configured else inferred[split]


@dataclass
class CellScores:
    """Per-cell scores: `overall` one row per (cell, split); `tasks` one row per (cell, split, task);
    `per_seed` one row per (cell, split, seed, task) without bootstrap (the unit of the paired tests)."""

    overall: pd.DataFrame
    tasks: pd.DataFrame
    per_seed: pd.DataFrame
    summaries: dict  # (cell, split) -> ScoreSummary
    task_order: list[str]


def _toggle_values(group: pd.DataFrame, toggles: Sequence[str]) -> dict:
    return {t: group[t].iloc[0] for t in toggles}


def score_cells(
    results: Results,
    tasks: Sequence[str] | None = None,
    episodes_per_task: int | None = None,
    boot: Bootstrap = Bootstrap(),
) -> CellScores:
    frame = results.frame
    task_list = list(tasks) if tasks else list(dict.fromkeys(frame["task"]))
    inferred = _inferred_expected(frame)
    overall_rows, task_rows, seed_rows, summaries = [], [], [], {}
    for (cell, split), group in frame.groupby(GROUP, sort=False):
        n_exp = _expected_for(group, split, episodes_per_task, inferred)
        seeds = sorted(group["seed"].unique())
        toggles = _toggle_values(group, results.toggles)
        summary = score_episodes(
            frame_to_episodes(group), tasks=task_list, expected=n_exp * len(seeds),
            n_boot=boot.n, seed=boot.seed, ci=boot.ci,
        )
        summaries[(cell, split)] = summary
        suites = sorted(group["suite"].astype(str).unique())
        overall_rows.append({
            "cell": cell, "split": split, **toggles, "seeds": len(seeds),
            "suite": "+".join(suites), **_flat_overall(summary),
        })
        for row in summary.task_rows():
            task_rows.append({"cell": cell, "split": split, **toggles, **row})
        for seed in seeds:
            s = score_episodes(frame_to_episodes(group[group["seed"] == seed]), tasks=task_list,
                               expected=n_exp, n_boot=0)
            for t in s.tasks:
                seed_rows.append({"cell": cell, "split": split, **toggles, "seed": seed, "task": t.task,
                                  "q_score": t.q_score, "success_rate": t.success_rate})
    return CellScores(
        overall=pd.DataFrame(overall_rows), tasks=pd.DataFrame(task_rows),
        per_seed=pd.DataFrame(seed_rows), summaries=summaries, task_order=task_list,
    )


def _flat_overall(summary: ScoreSummary) -> dict:
    d = summary.overall_dict()
    d.pop("bootstrap")
    d["q_ci_low"], d["q_ci_high"] = d.pop("q_score_ci")
    d["sr_ci_low"], d["sr_ci_high"] = d.pop("task_sr_ci")
    return d


def sort_tasks_by_length(tasks: Sequence[str], seconds: dict[str, float]) -> list[str]:
    """Shortest mean demonstration first; tasks without a length go last, in their given order."""
    return sorted(tasks, key=lambda t: (seconds.get(t) is None or math.isnan(seconds.get(t, math.nan)),
                                        seconds.get(t) or 0.0))
