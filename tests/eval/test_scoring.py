"""Official 2025 scoring (facts §3.2-3.3) on hand-built metrics folders: exact numbers."""

import json
import math

import pytest

from behavior_lab.eval.scoring import (
    MetricsFormatError,
    infer_expected,
    load_episode,
    load_metrics_dir,
    parse_metrics_name,
    score_dir,
    score_episodes,
    time_score,
)


def official(q, normalized_time=1.0, nad=(1.0, 1.0, 1.0)):
    """Exactly the keys OmniGibson's eval.py writes (no extras)."""
    return {
        "q_score": {"final": q},
        "time": {"simulator_steps": 100, "simulator_time": 100 / 30, "normalized_time": normalized_time},
        "agent_distance": {"base": 1.0, "left": 2.0, "right": 3.0},
        "normalized_agent_distance": dict(zip(("base", "left", "right"), nad)),
    }


def ours(q, **kw):
    return {**official(q, **kw), "success": q == 1.0, "seed": 123, "task": "x", "predicates": {"on": True}}


def write(folder, name, payload):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


@pytest.fixture
def run_dir(tmp_path):
    m = tmp_path / "run" / "metrics"
    # task A (long name with underscores): q 1.0, 0.5, third episode missing
    write(m, "putting_away_Halloween_decorations_12_0.json", official(1.0, normalized_time=2.0, nad=(0.5, 1.0, 1.5)))
    write(m, "putting_away_Halloween_decorations_13_0.json", ours(0.5, normalized_time=0.5, nad=(1.0, 1.0, 1.0)))
    # task B: partial credit 0.25, a failure, a success
    write(m, "turning_on_radio_1_0.json", official(0.25, normalized_time=1.0))
    write(m, "turning_on_radio_2_0.json", ours(0.0, normalized_time=0.25))
    write(m, "turning_on_radio_3_0.json", official(1.0, normalized_time=4.0))
    write(m.parent, "cell.json", {"cell": "x"})  # not a metrics file: ignored
    return tmp_path / "run"


def test_parse_name_from_the_right():
    assert parse_metrics_name("putting_away_Halloween_decorations_12_3.json") == (
        "putting_away_Halloween_decorations", 12, 3)
    with pytest.raises(MetricsFormatError, match="turning_on_radio.json"):
        parse_metrics_name("turning_on_radio.json")


def test_time_score_formula():
    assert time_score(2.0) == 2.0
    assert time_score(1.0) == 1.0
    assert time_score(0.5) == 0.0
    assert time_score(0.25) == -2.0
    assert math.isnan(time_score(float("nan")))


def test_hand_computed_scores_with_missing_and_partial(run_dir):
    eps = load_metrics_dir(run_dir)  # finds run/metrics/
    assert len(eps) == 5
    assert infer_expected(eps) == 3
    s = score_episodes(eps, n_boot=200, seed=1)
    a = s.task("putting_away_Halloween_decorations")
    b = s.task("turning_on_radio")
    assert (a.episodes, a.expected) == (2, 3)
    assert a.q_score == pytest.approx(1.5 / 3)  # missing episode counts 0
    assert a.success_rate == pytest.approx(1 / 3)
    assert b.q_score == pytest.approx(1.25 / 3)
    assert b.success_rate == pytest.approx(1 / 3)
    assert s.q_score == pytest.approx((1.5 / 3 + 1.25 / 3) / 2)
    assert s.task_sr == pytest.approx(1 / 3)
    assert s.num_tasks == 2
    # time: A = (2.0 + 0.0 + missing 0) / 3; B = (1.0 - 2.0 + 4.0) / 3
    assert a.time_score == pytest.approx(2.0 / 3)
    assert b.time_score == pytest.approx(3.0 / 3)
    assert s.time_score == pytest.approx((2.0 / 3 + 1.0) / 2)
    # distance: A base = (0.5 + 1.0) / 3, right = (1.5 + 1.0) / 3; B base = 3 / 3
    assert a.distance_score["base"] == pytest.approx(1.5 / 3)
    assert a.distance_score["right"] == pytest.approx(2.5 / 3)
    assert s.distance_score["base"] == pytest.approx((0.5 + 1.0) / 2)
    d = s.overall_dict()
    assert {"q_score", "task_sr", "num_tasks", "time_score", "base_distance_score", "q_score_ci"} <= set(d)


def test_expected_given_and_absent_tasks_score_zero(run_dir):
    s = score_dir(run_dir, expected=10, tasks=["turning_on_radio", "putting_away_Halloween_decorations", "can_meat"],
                  n_boot=0)
    assert s.task("turning_on_radio").q_score == pytest.approx(1.25 / 10)
    assert s.task("can_meat").q_score == 0.0 and s.task("can_meat").episodes == 0
    assert s.q_score == pytest.approx((1.25 / 10 + 1.5 / 10 + 0.0) / 3)
    assert s.task_sr == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    per_task = score_dir(run_dir, expected={"turning_on_radio": 4, "putting_away_Halloween_decorations": 2}, n_boot=0)
    assert per_task.task("turning_on_radio").q_score == pytest.approx(1.25 / 4)
    assert per_task.task("putting_away_Halloween_decorations").q_score == pytest.approx(1.5 / 2)


def test_bootstrap_is_seeded_and_brackets_the_estimate(run_dir):
    s1 = score_dir(run_dir, n_boot=500, seed=7)
    s2 = score_dir(run_dir, n_boot=500, seed=7)
    assert s1.q_ci == s2.q_ci and s1.sr_ci == s2.sr_ci
    assert s1.q_ci.low <= s1.q_score <= s1.q_ci.high
    for t in s1.tasks:
        assert 0.0 <= t.q_ci.low <= t.q_score <= t.q_ci.high <= 1.0


def test_constant_scores_give_degenerate_interval(tmp_path):
    for i in range(4):
        write(tmp_path, f"can_meat_{i}_0.json", official(0.5))
    s = score_dir(tmp_path, n_boot=100)
    assert s.q_ci.low == s.q_ci.high == 0.5


@pytest.mark.parametrize("payload, key", [
    ({"time": {}}, "q_score.final"),
    ({"q_score": {}}, "q_score.final"),
    ({"q_score": {"final": "high"}}, "q_score.final"),
    ({"q_score": {"final": 1.5}}, "q_score.final"),
    ({"q_score": 0.5}, "q_score.final"),
    ({"q_score": {"final": 0.5}, "time": {"normalized_time": "fast"}}, "time.normalized_time"),
    ({"q_score": {"final": 0.5}, "time": {"normalized_time": 0}}, "time.normalized_time"),
    ({"q_score": {"final": 0.5}, "normalized_agent_distance": {"base": "far"}}, "normalized_agent_distance.base"),
    ({"q_score": {"final": 0.5}, "agent_distance": [1, 2]}, "agent_distance"),
    ({"q_score": {"final": 0.5}, "diagnostics": {"closest_approach_m": 0.1}}, "diagnostics"),
    ({"q_score": {"final": 0.5}, "diagnostics": [1]}, "diagnostics"),
    ({"q_score": {"final": 0.5}, "diagnostics": {"closest_approach_m": {"can": "near"}, "grasp_events": {}}},
     "diagnostics"),
])
def test_malformed_files_name_file_and_key(tmp_path, payload, key):
    path = write(tmp_path, "can_meat_0_0.json", payload)
    with pytest.raises(MetricsFormatError) as e:
        load_episode(path)
    assert str(path) in str(e.value) and key in str(e.value)


def test_invalid_json_names_file(tmp_path):
    path = write(tmp_path, "can_meat_0_0.json", "{not json")
    with pytest.raises(MetricsFormatError, match="can_meat_0_0.json.*not valid JSON"):
        load_episode(path)


def test_null_secondary_metrics_are_nan_not_errors(tmp_path):
    """Our writer stores null when there is no human reference (embedded suite)."""
    payload = {"q_score": {"final": 1.0}, "time": {"simulator_steps": 5, "normalized_time": None},
               "normalized_agent_distance": {"base": None, "left": None, "right": None}}
    ep = load_episode(write(tmp_path, "can_meat_0_0.json", payload))
    assert ep.success and math.isnan(ep.time_score) and math.isnan(ep.normalized_agent_distance["base"])


def test_duplicates_and_overflow_are_errors(run_dir):
    eps = load_metrics_dir(run_dir)
    with pytest.raises(ValueError, match="duplicate episode"):
        score_episodes(eps + eps[:1], n_boot=0)
    with pytest.raises(ValueError, match="3 episodes found but only 2 expected"):
        score_episodes(eps, expected=2, n_boot=0)
    with pytest.raises(ValueError, match="outside the scored set"):
        score_episodes(eps, tasks=["turning_on_radio"], n_boot=0)


def test_reach_diagnostics_are_read_where_present(tmp_path):
    """Embedded-suite episodes carry `diagnostics`: the closest approach over the task's targets and
    the total grasp events; OmniGibson's files and grasp-free tasks give NaN."""
    diag = {"closest_approach_m": {"can_1": 0.12, "can_2": 0.034, "can_3": 0.3},
            "grasp_events": {"can_1": 0, "can_2": 2, "can_3": 1}}
    ep = load_episode(write(tmp_path, "picking_up_trash_0_0.json", {"q_score": {"final": 0.0}, "diagnostics": diag}))
    assert ep.closest_approach == pytest.approx(0.034) and ep.grasp_events == 3
    radio = {"closest_approach_m": {"radio": 0.05}, "grasp_events": {}}
    ep = load_episode(write(tmp_path, "turning_on_radio_0_0.json", {"q_score": {"final": 1.0}, "diagnostics": radio}))
    assert ep.closest_approach == pytest.approx(0.05) and math.isnan(ep.grasp_events)
    ep = load_episode(write(tmp_path, "can_meat_0_0.json", official(0.5)))
    assert math.isnan(ep.closest_approach) and math.isnan(ep.grasp_events)
