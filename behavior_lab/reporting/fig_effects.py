"""Forest plot of toggle effects: main effects, then two-way interactions, on q-score and success
rate, each with its bootstrap 95% CI and the sign-flip permutation p-value."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from behavior_lab.reporting.effects import METRICS
from behavior_lab.reporting.plotting import NOT_SIGNIFICANT, SIGNIFICANT, STYLE, save_figure

ALPHA = 0.05


def figure_size(terms: int) -> tuple[float, float]:
    return 11.0, 1.5 + 0.32 * max(terms, 2)


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def plot_effects(effects: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """effects: the toggle_effects table for one split."""
    terms = list(dict.fromkeys(
        list(effects.loc[effects["kind"] == "main", "term"]) + list(effects.loc[effects["kind"] == "interaction", "term"])
    ))
    n = len(terms)
    n_main = int((effects.drop_duplicates("term")["kind"] == "main").sum())
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(METRICS), figsize=figure_size(n), sharey=True,
                                 layout="constrained")
        y = np.arange(n)
        for ax, (metric, label) in zip(np.atleast_1d(axes), METRICS.items()):
            sub = effects[effects["metric"] == metric].set_index("term").reindex(terms)
            eff = sub["effect"].to_numpy(float)
            lo, hi = sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float)
            p = sub["p_value"].to_numpy(float)
            # Colour by the Holm-adjusted p (many terms: raw p < 0.05 flags false positives);
            # the label shows the raw p, the effects table both.
            sig = np.nan_to_num(sub["p_holm"].to_numpy(float), nan=1.0) < ALPHA
            colors = [SIGNIFICANT if s else NOT_SIGNIFICANT for s in sig]
            ax.axvline(0.0, color="#444444", linewidth=0.8)
            ax.hlines(y, lo, hi, colors=colors, linewidth=2.0)
            markers = ["o" if k < n_main else "D" for k in range(n)]
            for k in range(n):
                if np.isfinite(eff[k]):
                    ax.plot(eff[k], y[k], marker=markers[k], color=colors[k], markersize=5.5, zorder=3)
            span = np.nanmax(np.abs(np.concatenate([lo, hi, [0.05]])))
            ax.set_xlim(-span * 1.12, span * 1.12)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, symmetric=True))
            # Effect and p-value as right-hand tick labels: layout-aware, never over the data.
            right = ax.secondary_yaxis("right")
            right.set_yticks(y)
            right.set_yticklabels(
                [f"{eff[k]:+.3f}  {_p_text(p[k])}" if np.isfinite(eff[k]) else "n/a" for k in range(n)],
                fontsize=7, family="monospace")
            for tick_label, c in zip(right.get_yticklabels(), colors):
                tick_label.set_color(c)
            right.tick_params(length=0)
            right.spines["right"].set_visible(False)
            if 0 < n_main < n:
                ax.axhline(n_main - 0.5, color="#bbbbbb", linewidth=0.7, linestyle="--")
            ax.set_xlabel(f"Δ {label} (on − off)")
            ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
            ax.set_axisbelow(True)
            ax.tick_params(axis="y", length=0)
        first = np.atleast_1d(axes)[0]
        first.set_yticks(y)
        first.set_yticklabels([t.replace("_", " ").replace(" x ", " × ") for t in terms])
        first.invert_yaxis()
        handles = [
            Line2D([], [], marker="o", color=SIGNIFICANT, linestyle="-", label=f"main effect, Holm-adjusted p < {ALPHA}"),
            Line2D([], [], marker="D", color=SIGNIFICANT, linestyle="-", label="interaction (Δ of Δ)"),
            Line2D([], [], marker="o", color=NOT_SIGNIFICANT, linestyle="-", label=f"Holm-adjusted p ≥ {ALPHA}"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=7.5)
        units = int(effects["units"].max()) if len(effects) else 0
        fig.suptitle(
            (title + "\n" if title else "")
            + f"paired over (task, seed) units (max {units}); 95% bootstrap CI; raw p of a two-sided sign-flip "
            "permutation test",
            x=0.01, ha="left", fontsize=9,
        )
        return save_figure(fig, path)
