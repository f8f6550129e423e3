"""Per-task bars for each ablation cell with bootstrap 95% CIs (q-score or success rate).

Few cells (<= GROUPED_MAX_CELLS): one row per task (plus "overall"), one bar per cell.
Many cells (a grid): small multiples, one panel per task (plus "overall"), one bar per cell, cells
sorted by overall score, so the best configurations read top-down in every panel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from behavior_lab.reporting.plotting import CELL_COLORS, STYLE, save_figure, short_task

GROUPED_MAX_CELLS = 6
PANEL_COLUMNS = 4
METRIC_COLUMNS = {"q_score": ("q_score", "q_ci_low", "q_ci_high", "q-score"),
                  "success_rate": ("success_rate", "sr_ci_low", "sr_ci_high", "success rate")}
OVERALL = "overall (mean over tasks)"


def figure_size(cells: int, rows: int) -> tuple[float, float]:
    """Inches for `rows` task rows (incl. overall) and `cells` bars per task."""
    if cells <= GROUPED_MAX_CELLS:
        return 8.5, 1.2 + rows * (0.16 + 0.13 * cells)
    n_cols = min(PANEL_COLUMNS, rows)
    return 2.3 + 2.4 * n_cols, 0.8 + (0.6 + 0.12 * cells) * math.ceil(rows / n_cols)


def _long_table(tasks_frame: pd.DataFrame, overall: pd.DataFrame, metric: str) -> pd.DataFrame:
    value, lo, hi, _ = METRIC_COLUMNS[metric]
    per_task = tasks_frame[["cell", "task", value, lo, hi]].rename(columns={value: "v", lo: "lo", hi: "hi"})
    o_value = "task_sr" if metric == "success_rate" else "q_score"
    ov = overall[["cell", o_value, lo, hi]].rename(columns={o_value: "v", lo: "lo", hi: "hi"}).assign(task=OVERALL)
    return pd.concat([ov, per_task], ignore_index=True)


def plot_task_bars(
    tasks_frame: pd.DataFrame,
    overall: pd.DataFrame,
    task_order: Sequence[str],
    metric: str,
    path: str | Path,
    title: str = "",
) -> Path:
    """tasks_frame / overall: CellScores.tasks / .overall restricted to one split."""
    data = _long_table(tasks_frame, overall, metric)
    o_value = "task_sr" if metric == "success_rate" else "q_score"
    cells = list(overall.sort_values(o_value, ascending=False, kind="stable")["cell"])
    rows = [OVERALL, *task_order]
    label = METRIC_COLUMNS[metric][3]
    with plt.rc_context(STYLE):
        if len(cells) <= GROUPED_MAX_CELLS:
            fig = _grouped(data, rows, cells, label)
        else:
            fig = _small_multiples(data, rows, cells, label)
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=10)
        return save_figure(fig, path)


def _errors(sub: pd.DataFrame) -> np.ndarray:
    v, lo, hi = sub["v"].to_numpy(float), sub["lo"].to_numpy(float), sub["hi"].to_numpy(float)
    err = np.vstack([v - lo, hi - v])
    return np.where(np.isfinite(err), np.clip(err, 0, None), 0.0)


def _grouped(data: pd.DataFrame, rows: list[str], cells: list[str], label: str):
    n, k = len(rows), len(cells)
    bar_h = 0.8 / k
    fig, ax = plt.subplots(figsize=figure_size(k, n), layout="constrained")
    for c_i, cell in enumerate(cells):
        sub = data[data["cell"] == cell].set_index("task").reindex(rows)
        y = np.arange(n) + (c_i - (k - 1) / 2) * bar_h
        ax.barh(y, sub["v"].fillna(0), height=bar_h * 0.92, color=CELL_COLORS[c_i % len(CELL_COLORS)],
                xerr=_errors(sub.reset_index()), error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "#333333"},
                label=cell)
    ax.set_yticks(range(n))
    ax.set_yticklabels([r if r == OVERALL else short_task(r, 40) for r in rows])
    ax.get_yticklabels()[0].set_fontweight("bold")
    ax.axhline(0.5, color="#999999", linewidth=0.6)
    ax.set_ylim(n - 0.5, -0.5)  # first row on top, no empty margin
    ax.set_xlim(0, 1.0)
    ax.set_xlabel(f"{label} (bars: 95% bootstrap CI)")
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    if k > 1:
        fig.legend(loc="outside right upper", fontsize=7.5, frameon=False, title="cell", title_fontsize=7.5)
    else:
        ax.set_title(f"cell: {cells[0]}", loc="left", fontsize=8.5, color="#444444")
    return fig


def _small_multiples(data: pd.DataFrame, rows: list[str], cells: list[str], label: str):
    n_panels = len(rows)
    n_cols = min(PANEL_COLUMNS, n_panels)
    n_rows = math.ceil(n_panels / n_cols)
    k = len(cells)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=figure_size(k, n_panels), sharey=True, squeeze=False,
                             layout="constrained")
    y = np.arange(k)
    for p_i, ax in enumerate(axes.flat):
        if p_i >= n_panels:
            ax.set_visible(False)
            continue
        task = rows[p_i]
        sub = data[data["task"] == task].set_index("cell").reindex(cells).reset_index()
        color = "#404040" if task == OVERALL else CELL_COLORS[0]
        ax.barh(y, sub["v"].fillna(0), height=0.75, color=color, xerr=_errors(sub),
                error_kw={"elinewidth": 0.6, "capsize": 1.0, "ecolor": "#222222"})
        ax.set_title(task if task == OVERALL else short_task(task, 30), fontsize=8.5,
                     fontweight="bold" if task == OVERALL else "normal")
        ax.set_xlim(0, 1.0)
        ax.set_xticks([0, 0.5, 1.0])
        ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)
        if p_i % n_cols == 0:
            ax.set_yticks(y)
            ax.set_yticklabels(cells, fontsize=max(4.5, 8 - k / 16))
        if p_i // n_cols == n_rows - 1 or p_i + n_cols >= n_panels:
            ax.set_xlabel(label)
    axes[0, 0].set_ylim(k - 0.5, -0.5)  # shared: best cell on top in every panel
    fig.supxlabel("cells sorted by overall score; whiskers: 95% bootstrap CI", x=0.99, ha="right",
                  fontsize=7, color="#555555")
    return fig
