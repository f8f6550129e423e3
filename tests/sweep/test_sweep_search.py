"""Optuna search mode: TPE over continuous hyperparameters, persistent, resumable after a crash."""

from __future__ import annotations

import subprocess
import sys

import optuna
from sweep_fakes import FakeStageRunner, compose_sweep, read_calls

from behavior_lab.sweep.app import SweepApp
from behavior_lab.sweep.progress import Silent


def _app(tmp_path, calls, n_trials=4):
    cfg = compose_sweep(
        [
            "ablation=search_continuous",
            "tasks=[turning_on_radio,picking_up_trash]",
            f"out={tmp_path / 'out'}",
            f"sweep.search.n_trials={n_trials}",
            "sweep.search.startup_trials=2",
            "eval.episodes_per_task=2",
        ]
    )
    return SweepApp(cfg, "search_continuous", runner=FakeStageRunner(str(calls)), progress=Silent())


def _study(tmp_path):
    return optuna.load_study(
        study_name="search-search_continuous", storage=f"sqlite:///{tmp_path / 'out' / 'ledger.db'}"
    )


def test_search_runs_n_trials_and_resumes(tmp_path, calls):
    summary = _app(tmp_path, calls).run()
    assert not summary.failed and summary.pending == 0
    study = _study(tmp_path)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4
    assert set(done[0].params) == {
        "innovation.correlated_noise.beta",
        "innovation.multi_sample_fm.num_samples",
        "innovation.inpainting.time_threshold",
    }
    # the objective is the mean task q over the task subset: the fake scores 0.2 + 0.6 (1 - |beta - 0.7|) (+0.005)
    for t in done:
        beta = t.params["innovation.correlated_noise.beta"]
        assert abs(t.value - (0.2 + 0.6 * (1 - abs(beta - 0.7)) + 0.005)) < 1e-9
    assert summary.best["value"] == max(t.value for t in done)
    trains = [c for c in read_calls(calls) if c["stage"] == "train"]
    assert len(trains) == 4 and all("innovation/correlated_noise=on" in c["overrides"] for c in trains)
    assert all(any(o.startswith("innovation.multi_sample_fm.num_samples=") for o in c["overrides"]) for c in trains)
    evals = [c for c in read_calls(calls) if c["stage"] == "eval"]
    assert all(any(o.startswith("innovation.inpainting.time_threshold=") for o in c["overrides"]) for c in evals)
    n = len(read_calls(calls))
    again = _app(tmp_path, calls).run()  # persistent: nothing left to do
    assert again.ran == {"search_trials": 0} and [c["stage"] for c in read_calls(calls)[n:]] == ["report"]
    _app(tmp_path, calls, n_trials=6).run()  # continue the same study to 6 trials
    assert len([t for t in _study(tmp_path).trials if t.state.name == "COMPLETE"]) == 6
    assert (tmp_path / "out" / "results").is_dir()


def test_crashed_search_trial_is_retried_with_its_parameters(tmp_path, calls):
    _app(tmp_path, calls, n_trials=1).run()  # creates the study
    code = (
        "import os, optuna; from behavior_lab.sweep.ledger import process_identity;"
        "s = optuna.load_study(study_name='search-search_continuous',"
        f" storage='sqlite:///{tmp_path / 'out' / 'ledger.db'}');"
        "from optuna.distributions import FloatDistribution as F;"
        "t = s.ask({'innovation.correlated_noise.beta': F(0.0, 1.0)}); t.set_user_attr('claim', process_identity());"
        "print(t.number, t.params['innovation.correlated_noise.beta'], flush=True); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    number, beta = int(out[0]), float(out[1])
    _app(tmp_path, calls, n_trials=2).run()
    trials = _study(tmp_path).trials
    assert trials[number].state.name == "FAIL"
    retry = [t for t in trials if t.user_attrs.get("retry_of") == number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].params["innovation.correlated_noise.beta"] == beta
