"""Per-task / per-episode score chart (the seed report's figure): tasks as rows, sorted by mean
demonstration length (shortest on top), episodes as cells shaded by q — red for q = 0, green
shades for partial credit, darkest for success, grey hatched for a missing episode (scored 0)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.patches import Patch, Rectangle

from behavior_lab.eval.scoring import ScoreSummary
from behavior_lab.reporting.plotting import (
    FAIL_COLOR, MISSING_COLOR, PARTIAL_CMAP, STYLE, SUCCESS_COLOR, q_color, save_figure, short_task,
)

ANNOTATE_MAX_COLUMNS = 24  # write the q value into partial-credit cells up to this many columns


def figure_size(columns: int, rows: int) -> tuple[float, float]:
    """Inches: room for task labels (left) and per-task scores (right) around 0.28 x 0.3 in cells."""
    return 2.6 + 0.28 * columns + 1.9, 1.35 + 0.3 * rows


def plot_episode_grid(
    episodes: pd.DataFrame,
    tasks: Sequence[str],
    columns: int,
    summary: ScoreSummary,
    demo_seconds: dict[str, float],
    title: str,
    path: str | Path,
) -> Path:
    """episodes: the tidy rows of one cell and split; tasks: row order; columns: episodes expected
    per task (x seeds); summary: that cell's scores (row annotations)."""
    n_rows = len(tasks)
    seeds = sorted(episodes["seed"].unique())
    # One block of columns per seed (missing episodes fill the end of their seed's block).
    per_seed = columns // len(seeds) if len(seeds) > 1 and columns % len(seeds) == 0 else columns
    blocks = seeds if per_seed != columns else [None]
    rgba = np.tile(np.array(to_rgba(MISSING_COLOR)), (n_rows, columns, 1))
    q_text: list[tuple[int, int, float]] = []
    missing: list[tuple[int, int]] = []
    for i, task in enumerate(tasks):
        of_task = episodes.loc[episodes["task"] == task]
        for b, seed in enumerate(blocks):
            sub = of_task if seed is None else of_task.loc[of_task["seed"] == seed]
            qs = sub.sort_values(["seed", "instance", "rollout"])["q"].to_numpy()
            for j in range(per_seed):
                col = b * per_seed + j
                if j < len(qs):
                    rgba[i, col] = to_rgba(q_color(float(qs[j])))
                    if 0.0 < qs[j] < 1.0:
                        q_text.append((i, col, float(qs[j])))
                else:
                    missing.append((i, col))

    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=figure_size(columns, n_rows), layout="constrained")
        ax.imshow(rgba, aspect="auto", interpolation="nearest")
        # White gutters between cells.
        ax.set_xticks(np.arange(-0.5, columns, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        for i, j in missing:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="////", edgecolor="#b0b0b0",
                                   linewidth=0))
        if columns <= ANNOTATE_MAX_COLUMNS:
            for i, j, q in q_text:
                ax.text(j, i, f"{q:.2f}".lstrip("0"), ha="center", va="center", fontsize=6,
                        color="white" if q > 0.6 else "#1b1b1b")
        ax.set_yticks(range(n_rows))
        labels = []
        for t in tasks:
            sec = demo_seconds.get(t)
            labels.append(f"{short_task(t, 40)}  ({sec:.0f} s)" if sec is not None else short_task(t, 40))
        ax.set_yticklabels(labels)
        step = max(1, columns // 10)
        ax.set_xticks(range(0, columns, step))
        ax.set_xticklabels([str(k + 1) for k in range(0, columns, step)])
        ax.set_xlabel("episode")
        if blocks != [None]:
            for b in range(1, len(blocks)):
                ax.axvline(b * per_seed - 0.5, color="#303030", linewidth=1.6)
            top = ax.secondary_xaxis("top")
            top.set_xticks([b * per_seed + (per_seed - 1) / 2 for b in range(len(blocks))])
            top.set_xticklabels([f"seed {s}" for s in blocks], fontsize=7.5)
            top.tick_params(length=0)
            top.spines["top"].set_visible(False)
            ax.set_xticks(range(0, columns, max(1, per_seed // 5)))
            ax.set_xticklabels([str(k % per_seed + 1) for k in range(0, columns, max(1, per_seed // 5))])
        ax.tick_params(axis="both", length=0)
        # Per-task scores as right-hand tick labels, so the layout engine makes room for them.
        right = ax.secondary_yaxis("right")
        right.set_yticks(range(n_rows))
        right.set_yticklabels([f"q {summary.task(t).q_score:.2f}  SR {summary.task(t).success_rate:.2f}" for t in tasks],
                              fontsize=7.5, family="monospace", color="#333333")
        right.tick_params(length=0)
        right.spines["right"].set_visible(False)
        ax.set_title(
            f"{title}\nq-score {summary.q_score:.3f} [{summary.q_ci.low:.3f}, {summary.q_ci.high:.3f}]   "
            f"task SR {summary.task_sr:.3f} [{summary.sr_ci.low:.3f}, {summary.sr_ci.high:.3f}]\n"
            f"{summary.num_tasks} tasks, shortest demo first",
            loc="left", fontsize=9,
        )
        handles = [
            Patch(facecolor=SUCCESS_COLOR, label="success (q = 1)"),
            Patch(facecolor=PARTIAL_CMAP(0.7), label="partial credit (shade ∝ q)"),
            Patch(facecolor=FAIL_COLOR, label="failure (q = 0)"),
            Patch(facecolor=MISSING_COLOR, hatch="////", edgecolor="#b0b0b0", label="missing (counts 0)"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=7.5)
        return save_figure(fig, path)
