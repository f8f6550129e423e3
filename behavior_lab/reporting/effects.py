"""Main effects and two-way interactions of the innovation toggles, with paired tests.

Unit of analysis: one (task, seed) pair. For a toggle A, every cell with A on is paired with the
cell that has A off and every other toggle equal (same task, same seed); the paired differences
of the task score (q-score or success rate, missing episodes = 0) are averaged over the settings
of the other toggles, giving one difference per (task, seed). The effect is the mean of those.
This works for full grids and for leave-one-out designs alike (only matched pairs count).

Interaction A x B: the difference of differences, (effect of A with B on) - (effect of A with B off),
per (task, seed), averaged likewise.

With fewer than `min_units` (task, seed) units (one task and one seed: the embedded default), a
bootstrap over units is degenerate (a single difference, a zero-width interval). The pairs are then
episodes instead: the same (task, seed, instance, rollout) evaluated with the toggle on and off
(every cell of a sweep runs the same instances with the same episode seeds). Such an interval covers
evaluation noise (which instances succeed) only, not training-seed variance; the table says which
unit was used.

Uncertainty: percentile bootstrap over the units (seeded). Test: two-sided paired
sign-flip permutation test on the mean difference (exact enumeration for <= 16 units, else
Monte Carlo with `n_perm` seeded flips, p = (1 + #{|mean*| >= |mean|}) / (1 + n_perm)); Holm's
step-down adjustment across all terms of one metric is reported alongside.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

METRICS = {"q_score": "q-score", "success_rate": "success rate"}
UNIT = ["task", "seed"]
EPISODE_UNIT = ["task", "seed", "instance", "rollout"]
EPISODE_METRICS = {"q_score": "q", "success_rate": "success"}  # episode-level column of each metric
EXACT_MAX_UNITS = 16


@dataclass(frozen=True)
class EffectSettings:
    n_boot: int = 2000
    n_perm: int = 10000
    seed: int = 0
    ci: float = 0.95
    interactions: bool = True
    min_units: int = 5  # fewer (task, seed) units than this: pair episodes instead (see module doc)


def two_level_toggles(frame: pd.DataFrame, toggles: Sequence[str]) -> dict[str, tuple]:
    """Toggles that take exactly two values in `frame` -> (off/low, on/high) levels."""
    out = {}
    for t in toggles:
        values = [v for v in frame[t].dropna().unique()]
        if len(values) != 2:
            continue
        if set(map(type, values)) <= {bool, np.bool_}:
            out[t] = (False, True)
        else:
            lo, hi = sorted(values, key=lambda v: (str(type(v)), v))
            out[t] = (lo, hi)
    return out


def sign_flip_test(d: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided paired sign-flip permutation p-value for mean(d) = 0."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return float("nan")
    observed = abs(d.mean())
    if n <= EXACT_MAX_UNITS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        stats = np.abs((signs * d).mean(axis=1))
        return float(np.mean(stats >= observed - 1e-12))
    signs = rng.choice((1.0, -1.0), size=(n_perm, n))
    stats = np.abs((signs * d).mean(axis=1))
    return float((1 + np.sum(stats >= observed - 1e-12)) / (1 + n_perm))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaNs stay NaN and do not count)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    idx = np.where(ok)[0][np.argsort(p[ok])]
    m, running = len(idx), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _unit_differences(frame: pd.DataFrame, metric: str, levels: dict, terms: tuple[str, ...],
                      toggles: Sequence[str], unit: Sequence[str] = UNIT) -> pd.Series:
    """Per unit (default (task, seed)): the main-effect difference (one term) or difference of
    differences (two), averaged over the settings of the other toggles."""
    unit = list(unit)
    others = [t for t in toggles if t not in terms]
    sub = frame
    for t in terms:
        sub = sub[sub[t].isin(levels[t])]
    if sub.empty:
        return pd.Series(dtype=float)
    sub = sub.assign(**{f"__{t}": sub[t].map({levels[t][0]: 0, levels[t][1]: 1}).astype(int) for t in terms})
    key = [*[o for o in others], *unit]
    # Other toggles can be NaN (not part of a cell's description); match those as a level of their own.
    sub = sub.assign(**{o: sub[o].astype(object).where(sub[o].notna(), "<unset>") for o in others})
    wide = sub.pivot_table(index=key, columns=[f"__{t}" for t in terms], values=metric, aggfunc="mean")
    if len(terms) == 1:
        if not {0, 1} <= set(wide.columns):
            return pd.Series(dtype=float)
        d = wide[1] - wide[0]
    else:
        need = [(1, 1), (0, 1), (1, 0), (0, 0)]
        if not set(need) <= set(wide.columns):
            return pd.Series(dtype=float)
        d = (wide[(1, 1)] - wide[(0, 1)]) - (wide[(1, 0)] - wide[(0, 0)])
    d = d.dropna()
    return d.groupby(level=unit).mean() if len(d) else pd.Series(dtype=float)


def toggle_effects(per_seed: pd.DataFrame, toggles: Sequence[str],
                   settings: EffectSettings = EffectSettings(), episodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Effects table: one row per (split, term, metric). `per_seed` is CellScores.per_seed;
    `episodes` (Results.frame, one row per episode) enables episode pairing when units are few."""
    columns = ["split", "term", "kind", "metric", "effect", "ci_low", "ci_high", "p_value", "p_holm",
               "units", "unit", "level_off", "level_on"]
    rows = []
    for split, frame in per_seed.groupby("split", sort=False):
        levels = two_level_toggles(frame, toggles)
        split_eps = None if episodes is None else episodes[episodes["split"] == split]
        names = list(levels)
        terms: list[tuple[str, ...]] = [(t,) for t in names]
        if settings.interactions:
            terms += list(itertools.combinations(names, 2))
        for metric in METRICS:
            rng = np.random.default_rng(settings.seed)
            for term in terms:
                d = _unit_differences(frame, metric, levels, term, list(toggles)).to_numpy()
                unit = "task×seed"
                if 0 < len(d) < settings.min_units and split_eps is not None:
                    ep = split_eps.assign(**{metric: split_eps[EPISODE_METRICS[metric]].astype(float)})
                    d_ep = _unit_differences(ep, metric, levels, term, list(toggles), EPISODE_UNIT).to_numpy()
                    if len(d_ep) > len(d):
                        d, unit = d_ep, "episode"
                if len(d) == 0:
                    continue
                boot = d[rng.integers(0, len(d), size=(settings.n_boot, len(d)))].mean(axis=1)
                lo, hi = np.quantile(boot, [(1 - settings.ci) / 2, (1 + settings.ci) / 2])
                rows.append({
                    "split": split, "term": " x ".join(term), "kind": "main" if len(term) == 1 else "interaction",
                    "metric": metric, "effect": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi),
                    "p_value": sign_flip_test(d, settings.n_perm, rng), "units": len(d), "unit": unit,
                    "level_off": str(levels[term[0]][0]) if len(term) == 1 else "",
                    "level_on": str(levels[term[0]][1]) if len(term) == 1 else "",
                })
    table = pd.DataFrame(rows, columns=columns)
    if len(table):
        table["p_holm"] = np.nan
        for _, idx in table.groupby(["split", "metric"]).groups.items():
            table.loc[idx, "p_holm"] = holm(table.loc[idx, "p_value"].to_numpy())
    return table
