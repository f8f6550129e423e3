"""The driver end to end with a fake StageRunner: two-toggle grid, dedupe, resume, failures, report."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sweep_fakes import FakeStageRunner, compose_sweep, read_calls

from behavior_lab.sweep.app import SweepApp, build_plan
from behavior_lab.sweep.progress import Silent

TASKS = "tasks=[turning_on_radio,picking_up_trash]"


def _app(tmp_path, calls, *extra, runner=None):
    cfg = compose_sweep(["ablation=smoke", TASKS, f"out={tmp_path / 'out'}", "ledger.heartbeat_s=5", *extra])
    return SweepApp(cfg, "smoke", runner=runner or FakeStageRunner(str(calls)), progress=Silent()), cfg


def test_two_toggle_grid_end_to_end(tmp_path, calls):
    app, cfg = _app(tmp_path, calls)
    summary = app.run()
    assert not summary.failed and summary.pending == 0
    log = read_calls(calls)
    stages = Counter(c["stage"] for c in log)
    the_plan, _ = build_plan(cfg)
    distinct_training_configs = {tuple(sorted(c.part(app_registry(cfg), "train").items())) for c in the_plan.cells}
    assert stages["train"] == len(distinct_training_configs) == 2
    assert stages["eval"] == 4 * 2 and stages["data"] == 1 and stages["report"] == 1
    # each training got the cell's training overrides only; inference toggles went to eval only
    assert all(not any("inpainting" in o for o in c["overrides"]) for c in log if c["stage"] == "train")
    assert all(any("inpainting" in o for o in c["overrides"]) for c in log if c["stage"] == "eval")
    # the ledger: one COMPLETE trial per unit, evals carry cell/seed/task/metrics
    trials = app.ledger.trials()
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == 1 + 2 + 8 == len({t.user_attrs["unit_id"] for t in done})
    ev = [t for t in done if t.user_attrs["kind"] == "eval"]
    assert {t.user_attrs["cell"] for t in ev} == {"none", "cn", "inp", "cn+inp"}
    for t in ev:
        assert {"unit_id", "cell", "toggles", "seed", "task", "metrics"} <= set(t.user_attrs)
        assert len(t.user_attrs["metrics"]["episodes"]) == 1
    best = max(ev, key=lambda t: t.value)
    assert best.user_attrs["toggles"] == {"correlated_noise": True, "inpainting": True}
    # results tree for the report
    cell_json = json.loads((tmp_path / "out" / "results" / "cn+inp" / "seed_0" / "cell.json").read_text())
    assert (
        cell_json["toggles"] == {"correlated_noise": True, "inpainting": True} and cell_json["episodes_per_task"] == 1
    )
    assert len(list((tmp_path / "out" / "results").rglob("metrics/*.json"))) == 8
    assert summary.report == tmp_path / "out" / "report" / "report.md" and summary.report.exists()
    assert json.loads((tmp_path / "out" / "plan.json").read_text())["trainings"][0]["overrides"]


def app_registry(cfg):
    from behavior_lab.sweep.app import registry_from_cfg

    return registry_from_cfg(cfg)


def test_rerun_runs_nothing_and_more_seeds_add_only_new_units(tmp_path, calls):
    _app(tmp_path, calls)[0].run()
    n = len(read_calls(calls))
    summary = _app(tmp_path, calls)[0].run()
    log = read_calls(calls)
    assert [c["stage"] for c in log[n:]] == ["report"]  # nothing recomputed
    assert summary.ran == {"data": 0, "train": 0, "eval": 0}
    _app(tmp_path, calls, "seeds=[0,1]")[0].run()
    new = Counter(c["stage"] for c in read_calls(calls)[n + 1 :])
    assert new["train"] == 2 and new["eval"] == 8 and new["data"] == 0


def test_results_tree_is_read_by_the_real_reporting(tmp_path, calls):
    app, _ = _app(tmp_path, calls)
    app.run()
    from behavior_lab.reporting.collect import collect

    results = collect([tmp_path / "out" / "results"])
    assert len(results) == 8 and set(results.cells) == {"none", "cn", "inp", "cn+inp"}
    assert set(results.toggles) == {"correlated_noise", "inpainting"}
    from behavior_lab.reporting.ledger import read_optuna_records, records_to_rows

    recs = read_optuna_records(app.ledger.url, "ledger")  # the ledger itself is a report source too
    assert len(records_to_rows(recs)) == 8


def test_failed_training_blocks_its_evals_and_rerun_finishes(tmp_path, calls):
    app, _ = _app(tmp_path, calls, runner=FakeStageRunner(str(calls), fail_train="correlated_noise=on"))
    summary = app.run()
    assert len(summary.failed) == 1 and "injected training failure" in summary.failed[0]
    assert summary.pending == 1 + 4  # the training and its 4 evaluations
    failed = [t for t in app.ledger.trials() if t.state.name == "FAIL"]
    assert len(failed) == 1 and "injected" in failed[0].user_attrs["error"]
    summary = _app(tmp_path, calls)[0].run()
    assert not summary.failed and summary.pending == 0
    assert summary.ran == {"data": 0, "train": 1, "eval": 4}


def test_failed_eval_is_recorded_and_others_continue(tmp_path, calls):
    app, _ = _app(tmp_path, calls, runner=FakeStageRunner(str(calls), fail_eval_task="picking_up_trash"))
    summary = app.run()
    assert len(summary.failed) == 4 and summary.pending == 4
    assert summary.ran["eval"] == 4


def test_out_folder_can_move(tmp_path, calls):
    app, _ = _app(tmp_path, calls)
    app.run()
    (tmp_path / "out").rename(tmp_path / "moved")
    cfg = compose_sweep(
        [
            "ablation=smoke",
            TASKS,
            f"out={tmp_path / 'moved'}",
            f"ledger.storage=sqlite:///{tmp_path / 'moved' / 'ledger.db'}",
        ]
    )
    summary = SweepApp(cfg, "smoke", runner=FakeStageRunner(str(calls)), progress=Silent()).run()
    assert summary.pending == 0 and summary.ran["train"] == 0


@pytest.mark.parametrize("launcher", ["nonsense"])
def test_unknown_launcher_lists_valid_ones(tmp_path, calls, launcher):
    app, _ = _app(tmp_path, calls, f"launcher={launcher}")
    with pytest.raises(ValueError, match="valid launchers: sequential, basic, joblib"):
        app.run()


def test_sweep_feeds_the_real_report_command(tmp_path, calls):
    from sweep_fakes import FakeStagesRealReport

    app, _ = _app(tmp_path, calls, runner=FakeStagesRealReport(str(calls)))
    summary = app.run()
    assert not summary.failed, summary.failed
    report = tmp_path / "out" / "report"
    assert summary.report == report / "report.md"
    overall = json.loads((report / "overall.json").read_text())
    assert overall["num_tasks"] == 2 and abs(overall["q_score"] - 0.8) < 1e-9  # best cell cn+inp
    import pandas as pd

    summary_csv = pd.read_csv(report / "summary.csv")
    assert set(summary_csv["task"]) >= {"turning_on_radio", "picking_up_trash"}


def test_progress_log_lines_are_not_wrapped(capsys):
    """In a log (no terminal) a long unit label stays on its result line (rich wraps at 80 columns
    unless told not to; a wrapped label split 'training <cell>' from 'seed 0: done')."""
    from behavior_lab.sweep.progress import SweepProgress

    progress = SweepProgress()
    progress.start({"train": 1}, {})
    label = "correlated_noise=off,fast_aux=off,kv_transform=on,multi_sample_fm=on,system2=on seed 0"
    progress.end("train", label, True, "(841.2 s)")
    progress.stop()
    lines = capsys.readouterr().err.splitlines()
    assert f"training {label}: done (841.2 s)" in lines
