"""Collecting result trees / ledger records into the tidy table, and per-cell scores by hand."""

import json

import pytest

from behavior_lab.eval.scoring import MetricsFormatError
from behavior_lab.reporting.aggregate import Bootstrap, score_cells, sort_tasks_by_length
from behavior_lab.reporting.collect import collect
from behavior_lab.reporting.ledger import read_optuna_records, records_to_rows

from .conftest import metrics


def test_collect_grid_reads_cell_files(grid_tree):
    res = collect([grid_tree])
    f = res.frame
    assert res.toggles == ["a", "b"]
    assert len(f) == 4 * 2 * 2 * 2 - 1
    assert list(f.columns[:4]) == ["cell", "a", "b", "task"]
    assert set(f["cell"]) == {"a0b0", "a0b1", "a1b0", "a1b1"}
    row = f[(f["cell"] == "a1b0") & (f["seed"] == 1)].iloc[0]
    assert row["a"] == True and row["b"] == False  # noqa: E712 (object column of bools)
    assert set(f["suite"]) == {"embedded"} and set(f["split"]) == {"public"}
    assert f["expected"].dropna().unique().tolist() == [2]


def test_collect_without_cell_files_labels_by_folder(tmp_path):
    for run in ("runs/alpha", "runs/beta"):
        m = tmp_path / run / "metrics"
        m.mkdir(parents=True)
        (m / "can_meat_0_0.json").write_text(json.dumps(metrics(0.5, extra=False)))
        (m / "can_meat_1_0.json").write_text(json.dumps(metrics(1.0, extra=False)))
    f = collect([tmp_path / "runs"]).frame
    assert sorted(f["cell"].unique()) == ["alpha", "beta"]
    assert set(f["suite"]) == {"omnigibson"}  # only OmniGibson's keys
    assert set(f["seed"]) == {0}
    assert f["success"].tolist() == [False, True, False, True]


def test_per_episode_seeds_are_not_replicates(tmp_path):
    m = tmp_path / "run" / "metrics"
    m.mkdir(parents=True)
    for i, s in enumerate((11, 11)):
        (m / f"can_meat_{i}_0.json").write_text(json.dumps({**metrics(0.5), "seed": s}))
    f = collect([tmp_path / "run"]).frame
    assert set(f["seed"]) == {0} and sorted(f["episode_seed"]) == [11, 11]


def test_duplicate_episodes_are_reported(tmp_path):
    for run in ("a", "b"):
        m = tmp_path / run
        m.mkdir()
        (m / "cell.json").write_text(json.dumps({"cell": "same", "seed": 0}))
        (m / "can_meat_0_0.json").write_text(json.dumps(metrics(0.5)))
    with pytest.raises(ValueError, match="duplicate episode for cell 'same'"):
        collect([tmp_path])


def test_malformed_cell_file(tmp_path):
    (tmp_path / "cell.json").write_text(json.dumps({"toggles": [1, 2]}))
    (tmp_path / "can_meat_0_0.json").write_text(json.dumps(metrics(0.5)))
    with pytest.raises(MetricsFormatError, match="cell.json.*toggles"):
        collect([tmp_path])


def _records():
    common = {"cell": "c1", "toggles": {"a": True}, "seed": 3, "task": "can_meat", "episodes_per_task": 3}
    return [
        {**common, "instance": 0, "rollout": 0, "metrics": metrics(1.0)},
        {**common, "metrics": {"episodes": [{"instance": 1, "rollout": 0, **metrics(0.5)},
                                            {"instance": 2, "rollout": 0, **metrics(0.0)}]}},
    ]


def test_ledger_records_both_shapes():
    rows = records_to_rows(_records())
    assert [(r["instance"], r["q"], r["seed"], r["cell"], r["toggle::a"]) for r in rows] == [
        (0, 1.0, 3, "c1", True), (1, 0.5, 3, "c1", True), (2, 0.0, 3, "c1", True)]
    with pytest.raises(MetricsFormatError, match="ledger record 0.*'instance'"):
        records_to_rows([{"task": "can_meat", "metrics": metrics(1.0)}])
    with pytest.raises(MetricsFormatError, match=r"metrics.episodes\[0\].rollout"):
        records_to_rows([{"task": "can_meat", "metrics": {"episodes": [{"instance": 1}]}}])


def test_optuna_ledger_reader(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{tmp_path / 'ledger.db'}"
    study = optuna.create_study(study_name="ledger", storage=storage)
    for rec in _records():
        t = study.ask()
        for k, v in rec.items():
            t.set_user_attr(k, v)
        study.tell(t, 0.0)
    t = study.ask()
    t.set_user_attr("kind", "train")  # no metrics: skipped
    study.tell(t, 0.0)
    res = collect([], read_optuna_records(storage))
    assert len(res) == 3 and res.toggles == ["a"]
    s = score_cells(res, boot=Bootstrap(n=0))
    assert s.overall.loc[0, "q_score"] == pytest.approx(1.5 / 3)


def test_cell_scores_by_hand(grid_tree):
    s = score_cells(collect([grid_tree]), boot=Bootstrap(n=300, seed=0))
    o = s.overall.set_index("cell")
    # a0b0: radio (0.1*2 + 0.2*2)/4 = 0.15; can_meat (0 + 0 + 0.3 + missing)/4 = 0.075
    assert o.loc["a0b0", "q_score"] == pytest.approx((0.15 + 0.075) / 2)
    assert o.loc["a0b0", "task_sr"] == 0.0
    # a1b1: radio (1.0 + 0.5 + 0.6 + 0.6)/4 = 0.675; can_meat (0.4*2 + 0.7*2)/4 = 0.55
    assert o.loc["a1b1", "q_score"] == pytest.approx((0.675 + 0.55) / 2)
    assert o.loc["a1b1", "task_sr"] == pytest.approx((0.25 + 0.0) / 2)
    assert o.loc["a1b1", "seeds"] == 2 and o.loc["a1b1", "num_tasks"] == 2
    t = s.tasks.set_index(["cell", "task"])
    assert t.loc[("a0b0", "can_meat"), "episodes"] == 3 and t.loc[("a0b0", "can_meat"), "expected"] == 4
    ps = s.per_seed.set_index(["cell", "seed", "task"])
    assert ps.loc[("a0b0", 1, "can_meat"), "q_score"] == pytest.approx(0.15)
    assert ps.loc[("a1b1", 0, "turning_on_radio"), "success_rate"] == pytest.approx(0.5)


def test_expected_override_and_task_order(grid_tree):
    s = score_cells(collect([grid_tree]), episodes_per_task=5, boot=Bootstrap(n=0))
    # cell.json declares 2 per task and seed: the declaration wins over the configured default
    assert set(s.tasks["expected"]) == {4}
    assert sort_tasks_by_length(["can_meat", "turning_on_radio", "zzz"], {"can_meat": 395, "turning_on_radio": 72}) \
        == ["turning_on_radio", "can_meat", "zzz"]


def test_metrics_folder_given_directly_uses_its_run_folder(tmp_path):
    run = tmp_path / "outer" / "myrun"
    (run / "metrics").mkdir(parents=True)
    (tmp_path / "outer" / "cell.json").write_text(json.dumps({"cell": "unrelated"}))  # above: ignored
    (run / "cell.json").write_text(json.dumps({"cell": "mine", "seed": 4}))
    (run / "metrics" / "can_meat_0_0.json").write_text(json.dumps(metrics(0.5)))
    f = collect([run / "metrics"]).frame
    assert f.loc[0, "cell"] == "mine" and f.loc[0, "seed"] == 4
    (run / "cell.json").unlink()
    f = collect([run / "metrics"]).frame
    assert f.loc[0, "cell"] == "myrun" and f.loc[0, "seed"] == 0
