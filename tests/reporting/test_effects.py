"""Main effects / interactions / paired tests against hand-computed values (see conftest grid)."""

import numpy as np
import pandas as pd
import pytest

from behavior_lab.reporting.aggregate import Bootstrap, score_cells
from behavior_lab.reporting.collect import collect
from behavior_lab.reporting.effects import EffectSettings, holm, sign_flip_test, toggle_effects


@pytest.fixture
def effects(grid_tree):
    s = score_cells(collect([grid_tree]), boot=Bootstrap(n=0))
    return toggle_effects(s.per_seed, ["a", "b"], EffectSettings(n_boot=500, seed=0)).set_index(["term", "metric"])


def test_main_effects_and_interaction_by_hand(effects):
    # units (task, seed); radio/s0 and can_meat/s1 carry the success and the missing episode
    assert effects.loc[("a", "q_score"), "effect"] == pytest.approx((0.375 + 0.325 + 0.25 + 0.25) / 4)
    assert effects.loc[("b", "q_score"), "effect"] == pytest.approx((0.275 + 0.225 + 0.15 + 0.15) / 4)
    assert effects.loc[("a x b", "q_score"), "effect"] == pytest.approx((0.35 - 0.05 + 0.1 + 0.1) / 4)
    assert effects.loc[("a", "success_rate"), "effect"] == pytest.approx(0.25 / 4)
    assert effects.loc[("a", "q_score"), "units"] == 4
    # exact sign-flip p with 4 units: all-positive differences -> 2/16; interaction -> 4/16
    assert effects.loc[("a", "q_score"), "p_value"] == pytest.approx(2 / 16)
    assert effects.loc[("a x b", "q_score"), "p_value"] == pytest.approx(4 / 16)
    lo, hi = effects.loc[("a", "q_score"), ["ci_low", "ci_high"]]
    assert 0.25 <= lo <= 0.3 <= hi <= 0.375


def test_sign_flip_and_holm():
    rng = np.random.default_rng(0)
    assert sign_flip_test(np.array([1.0, 1.0, 1.0]), 100, rng) == pytest.approx(2 / 8)
    assert sign_flip_test(np.zeros(5), 100, rng) == 1.0
    big = np.full(40, 0.1)  # Monte Carlo branch: p = 1 / (1 + n_perm) at best
    assert sign_flip_test(big, 999, rng) == pytest.approx(1 / 1000)
    assert holm(np.array([0.01, 0.04, 0.03, np.nan])).tolist()[:3] == pytest.approx([0.03, 0.06, 0.06])


def test_leave_one_out_design_pairs_only_matched_cells():
    rows = []
    cells = {"full": (True, True), "no_a": (False, True), "no_b": (True, False)}
    for name, (a, b) in cells.items():
        for task, base in (("t1", 0.5), ("t2", 0.3)):
            q = base - 0.2 * (not a) - 0.1 * (not b)
            rows.append({"cell": name, "split": "public", "a": a, "b": b, "seed": 0, "task": task,
                         "q_score": q, "success_rate": 0.0})
    e = toggle_effects(pd.DataFrame(rows), ["a", "b"], EffectSettings(n_boot=100)).set_index(["term", "metric"])
    assert e.loc[("a", "q_score"), "effect"] == pytest.approx(0.2)
    assert e.loc[("b", "q_score"), "effect"] == pytest.approx(0.1)
    assert ("a x b", "q_score") not in e.index  # no a-off/b-off cell: interaction not estimable


def test_one_task_one_seed_pairs_episodes_on_the_same_instance():
    """One (task, seed) unit (the embedded default): a unit bootstrap would give a zero-width
    interval, so episodes on the same instance are paired; the effect is unchanged."""
    rng = np.random.default_rng(1)
    n = 30
    off = (rng.random(n) < 0.3).astype(float)
    on = np.where(rng.random(n) < 0.5, 1.0, off)  # "on" succeeds wherever "off" did, and more
    rows = [{"cell": cell, "split": "public", "task": "radio", "seed": 0, "instance": i, "rollout": 0,
             "a": a, "q": float(q), "success": bool(q == 1.0)}
            for cell, a, qs in (("on", True, on), ("off", False, off)) for i, q in enumerate(qs)]
    episodes = pd.DataFrame(rows)
    per_seed = (episodes.groupby(["cell", "split", "seed", "task", "a"], as_index=False)
                .agg(q_score=("q", "mean"), success_rate=("success", "mean")))
    settings = EffectSettings(n_boot=2000, seed=0)
    paired = toggle_effects(per_seed, ["a"], settings, episodes=episodes).set_index("metric")
    row = paired.loc["q_score"]
    assert row["unit"] == "episode" and row["units"] == n
    assert row["effect"] == pytest.approx(on.mean() - off.mean())
    assert row["ci_low"] < row["effect"] < row["ci_high"] and row["ci_high"] - row["ci_low"] > 0.1
    assert row["p_value"] < 0.01  # every paired difference is >= 0
    units = toggle_effects(per_seed, ["a"], settings).set_index("metric").loc["q_score"]  # no episodes given
    assert units["unit"] == "task×seed" and units["units"] == 1
    assert units["ci_low"] == units["ci_high"] == pytest.approx(row["effect"])
    never = toggle_effects(per_seed, ["a"], EffectSettings(n_boot=200, min_units=0), episodes=episodes)
    assert set(never["unit"]) == {"task×seed"}
