"""report.md: the figures and tables of one report, with the configuration and command behind them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from behavior_lab.reporting.collect import Results
from behavior_lab.reporting.table_format import Table, fmt, fmt_ci

SCORING_NOTE = (
    "Scoring follows the official 2025 scorer (facts §3.2–3.3): episode q = 1 on success, else the best "
    "goal option's fraction of newly satisfied predicates; task q = sum of episode q / episodes expected "
    "(missing episodes count 0); task SR = episodes with q = 1 / expected; overall = mean over tasks. "
    "Time score per rollout: 2 − 1/normalized_time if normalized_time ≤ 1, else normalized_time; distance "
    "scores = normalized_agent_distance; both averaged like q. CIs: percentile bootstrap, episodes "
    "resampled within each task."
)

EPISODE_CHART_NOTE = (
    "Per-episode charts: rows are tasks by mean demonstration length (shortest first), cells are episodes "
    "(one block per seed): red q = 0, green shades partial credit, darkest green success, hatched grey a "
    "missing episode (scored 0). Right: the task's q-score and success rate."
)

SECTION_TABLES = (
    ("leaderboard", "Leaderboard"),
    ("cells", "Cells"),
    ("effects", "Innovation effects"),
    ("per_task", "Per-task scores"),
    ("diagnostics", "Reach and grasp diagnostics"),
)


def _figure_caption(name: str) -> str:
    if name.startswith("episodes_"):
        return f"Per-task / per-episode scores: {name.removeprefix('episodes_')}"
    if name.startswith("task_bars_q"):
        return "Per-task q-score per cell with 95% bootstrap CIs"
    if name.startswith("task_bars_sr"):
        return "Per-task success rate per cell with 95% bootstrap CIs"
    if name.startswith("effects"):
        return "Main effects and two-way interactions of the innovation toggles (paired, 95% CIs)"
    return name


def write_report_md(
    out: Path,
    overall: dict,
    tables: dict[str, Table],
    figures: Sequence[Path],
    results: Results,
    config_yaml: str,
    command: str,
    notes: Sequence[str] = (),
) -> Path:
    frame = results.frame
    lines = [
        "# behavior_lab report",
        "",
        f"{len(frame)} episodes from {frame['cell'].nunique()} cell(s), {frame['task'].nunique()} task(s), "
        f"seeds {sorted(int(s) for s in frame['seed'].unique())}, splits {sorted(frame['split'].unique())}, "
        f"suite(s) {sorted(frame['suite'].astype(str).unique())}.",
        "",
        f"**{overall['cell']}** ({overall['split']}; {overall['cell_rule']}): "
        f"q-score **{fmt(overall['q_score'])}** {fmt_ci(*overall['q_score_ci'])}, "
        f"task SR **{fmt(overall['task_sr'])}** {fmt_ci(*overall['task_sr_ci'])}, "
        f"{overall['num_tasks']} tasks, {overall['episodes']}/{overall['episodes_expected']} episodes, "
        f"time score {fmt(overall['time_score'], 2)}, base distance score {fmt(overall['base_distance_score'], 2)}.",
        "",
        SCORING_NOTE,
        "",
    ]
    for note in notes:
        lines += [f"> {note}", ""]
    for key, heading in SECTION_TABLES:
        if key not in tables:
            continue
        t = tables[key]
        lines += [f"## {heading}", "", t.caption, "", t.to_markdown(),
                  f"Files: [`tables/{t.name}.md`](tables/{t.name}.md), [`tables/{t.name}.tex`](tables/{t.name}.tex), "
                  f"[`tables/{t.name}.csv`](tables/{t.name}.csv)", ""]
        if key == "cells":
            lines += ["## Figures", ""]
            if any(f.stem.startswith("episodes_") for f in figures):
                lines += [EPISODE_CHART_NOTE, ""]
            for fig in figures:
                rel = os.path.relpath(fig, out)
                lines += [f"### {_figure_caption(fig.stem)}", "", f"![{fig.stem}]({rel})", ""]
    lines += [
        "## How this report was made",
        "",
        "```",
        command or "behavior-lab report results=... out=...",
        "```",
        "",
        "Configuration:",
        "",
        "```yaml",
        config_yaml.rstrip() or "# (not recorded)",
        "```",
        "",
        "Other outputs: `summary.csv` (per task), `overall.json` (overall + every cell), `episodes.csv` "
        "(the tidy per-episode table).",
        "",
    ]
    path = out / "report.md"
    tmp = path.with_name(".report.md.tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)
    return path
