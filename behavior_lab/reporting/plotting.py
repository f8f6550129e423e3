"""Shared figure plumbing: headless backend, one palette, atomic PNG writes."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written headless (CI, cluster nodes); no display is needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402

DPI = 150
FAIL_COLOR = "#d7301f"  # q = 0
MISSING_COLOR = "#e6e6e6"
SUCCESS_COLOR = "#00441b"  # q = 1: darkest
# Partial credit 0 < q < 1: light to mid green, so a success stays visibly darker than any partial.
PARTIAL_CMAP = LinearSegmentedColormap.from_list("partial", ["#e5f5e0", "#41ab5d"])
CELL_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
SIGNIFICANT = "#08519c"
NOT_SIGNIFICANT = "#969696"

STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": DPI,
}


def q_color(q: float):
    """Episode colour: red failure (q = 0), green shade by partial credit, darkest on success."""
    if q >= 1.0 - 1e-9:
        return SUCCESS_COLOR
    if q <= 0.0:
        return FAIL_COLOR
    return PARTIAL_CMAP(q)


def save_figure(fig, path: str | Path, dpi: int = DPI) -> Path:
    """Write a PNG via a temporary file and rename, so a crash never leaves a half-written figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    with plt.rc_context(STYLE):
        fig.savefig(tmp, dpi=dpi, facecolor="white")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def short_task(name: str, width: int = 34) -> str:
    """Task label for axes: underscores as spaces, long names ellipsised."""
    s = name.replace("_", " ")
    return s if len(s) <= width else s[: width - 1] + "…"
