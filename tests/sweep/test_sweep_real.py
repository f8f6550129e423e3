"""The smoke ablation end to end with the real commands (demos, stats, train, eval, report)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import optuna
import pytest

from behavior_lab.cli.main import available_commands

NEEDED = ("demos", "stats", "train", "eval", "report")


@pytest.mark.slow
@pytest.mark.sim
def test_smoke_sweep_with_real_commands(tmp_path):
    missing = [c for c in NEEDED if c not in available_commands()]
    if missing:
        pytest.skip(f"commands not available yet: {missing}")
    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-m",
        "behavior_lab.cli.main",
        "sweep",
        "ablation=smoke",
        "tasks=[turning_on_radio]",
        f"out={out}",
        "seeds=[0]",
        "data.episodes_per_task=2",
        "eval.episodes_per_task=1",
    ]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "report:" in r.stdout.strip().splitlines()[-1]
    trials = optuna.load_study(study_name="ledger", storage=f"sqlite:///{out / 'ledger.db'}").get_trials()
    kinds = Counter(t.user_attrs["kind"] for t in trials if t.state.name == "COMPLETE")
    assert kinds == {"data": 1, "train": 2, "eval": 4}  # 2 distinct training configurations, 4 cells
    assert (out / "report" / "summary.csv").is_file()
    overall = json.loads((out / "report" / "overall.json").read_text())
    assert 0.0 <= overall["q_score"] <= 1.0
    # rerun: nothing recomputed
    r2 = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r2.returncode == 0
    again = optuna.load_study(study_name="ledger", storage=f"sqlite:///{out / 'ledger.db'}").get_trials()
    assert len(again) == len(trials)
