"""`behavior-lab eval` for real: a tiny exported checkpoint in the MuJoCo suite, files, scores, resume."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from behavior_lab.eval.scoring import score_dir

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real exported checkpoint of the tiny preset (random init); radio's mean demo length 20 steps."""
    from behavior_lab.eval.bench import tiny_checkpoint as export_tiny

    return export_tiny(tmp_path_factory.mktemp("ckpt"), {0: 20.0})  # timeout = 2 x 20 steps


def _eval(ckpt, out, *extra):
    cmd = [sys.executable, "-m", "behavior_lab.cli.main", "eval", f"ckpt={ckpt}", "tasks=[turning_on_radio]",
           "episodes_per_task=2", f"out={out}", "num_envs=2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_eval_writes_valid_files_that_score_to_hand_computed_values(tiny_checkpoint, tmp_path):
    r = _eval(tiny_checkpoint, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == f"metrics written to {tmp_path}/metrics"
    files = sorted((tmp_path / "metrics").glob("*.json"))
    assert [f.name for f in files] == ["turning_on_radio_1000000_0.json", "turning_on_radio_1000001_0.json"]
    qs, succ = [], []
    for f in files:
        rec = json.loads(f.read_text())
        for key in ("q_score", "time", "agent_distance", "normalized_agent_distance", "success", "predicates",
                    "seed", "config_hash", "ckpt_hash"):
            assert key in rec, key
        assert 0.0 <= rec["q_score"]["final"] <= 1.0
        assert rec["time"]["simulator_steps"] <= 40  # 2 x mean demo length from the checkpoint's stats
        assert rec["time"]["simulator_time"] == pytest.approx(rec["time"]["simulator_steps"] / 30)
        assert rec["time"]["normalized_time"] == pytest.approx(20.0 / rec["time"]["simulator_steps"])
        # embedded suite: reach diagnostics of the radio's button (nothing to grasp in this task)
        assert set(rec["diagnostics"]["closest_approach_m"]) == {"radio"}
        assert 0.0 < rec["diagnostics"]["closest_approach_m"]["radio"] < 3.0
        assert rec["diagnostics"]["grasp_events"] == {}
        qs.append(rec["q_score"]["final"])
        succ.append(rec["q_score"]["final"] == 1.0)
    summary = score_dir(tmp_path / "metrics", tasks=["turning_on_radio"], expected=2)
    assert summary.q_score == pytest.approx(sum(qs) / 2)
    assert summary.task_sr == pytest.approx(sum(succ) / 2)


def test_trace_writes_one_row_per_step_without_changing_the_results(tiny_checkpoint, tmp_path):
    import csv
    import math

    plain, traced = tmp_path / "plain", tmp_path / "traced"
    assert _eval(tiny_checkpoint, plain).returncode == 0
    r = _eval(tiny_checkpoint, traced, "trace=true")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (plain / "traces").exists()
    for f in sorted((traced / "metrics").glob("*.json")):
        rec, ref = json.loads(f.read_text()), json.loads((plain / "metrics" / f.name).read_text())
        assert rec == ref  # same episode, same config hash: tracing only writes more
        rows = list(csv.DictReader((traced / "traces" / f"{f.stem}.csv").open()))
        assert len(rows) == rec["time"]["simulator_steps"]
        assert [int(x["step"]) for x in rows] == list(range(1, len(rows) + 1))
        assert rows[0]["replanned"] == "1" and {x["replanned"] for x in rows} == {"0", "1"}
        assert all(x["stage"] != "" for x in rows)  # the tiny preset has System 2 on
        assert all(math.isfinite(float(x[f"a{k}"])) for x in rows for k in range(23))
        assert {x["held_left"] for x in rows} == {x["held_right"] for x in rows} == {""}
        closest = rec["diagnostics"]["closest_approach_m"]["radio"]
        dist = [float(x["dist_radio"]) for x in rows]
        assert min(dist) >= closest - 1e-5  # 6 significant digits; the closest also counts the reset pose
        assert float(rows[-1]["q_score"]) == pytest.approx(rec["q_score"]["final"])


def test_rerun_skips_finished_episodes_and_inference_toggles_change_the_config_hash(tiny_checkpoint, tmp_path):
    assert _eval(tiny_checkpoint, tmp_path).returncode == 0
    before = {p.name: p.read_text() for p in (tmp_path / "metrics").glob("*.json")}
    r = _eval(tiny_checkpoint, tmp_path)
    assert r.returncode == 0
    assert "0 env steps" in r.stdout or "env steps" not in r.stdout
    assert {p.name: p.read_text() for p in (tmp_path / "metrics").glob("*.json")} == before
    other = tmp_path / "off"
    r = _eval(tiny_checkpoint, other, "innovation/spline_speedup=off", "innovation/inpainting=off")
    assert r.returncode == 0, r.stderr[-3000:]
    h_on = json.loads(next(iter(before.values())))["config_hash"]
    h_off = json.loads(next((other / "metrics").glob("*.json")).read_text())["config_hash"]
    assert h_on != h_off


def test_an_episode_scores_the_same_whatever_shares_its_batch(tiny_checkpoint, tmp_path):
    """Episode seeds fix each chunk's flow noise and one model call per replanning env fixes the
    rounding: 3 episodes one at a time and 3 in lockstep (with a different episode count, so also a
    stand-in for a resumed run) write the same records, step for step."""
    def run(out, *extra):
        cmd = [sys.executable, "-m", "behavior_lab.cli.main", "eval", f"ckpt={tiny_checkpoint}",
               "tasks=[turning_on_radio]", f"out={out}", *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        return {p.name: json.loads(p.read_text()) for p in (out / "metrics").glob("*.json")}

    one = run(tmp_path / "one", "episodes_per_task=3", "num_envs=1")
    three = run(tmp_path / "three", "episodes_per_task=4", "num_envs=3")
    assert len(one) == 3 and set(one) < set(three)
    keys = ("q_score", "time", "agent_distance", "diagnostics", "seed")
    for name, rec in one.items():
        assert {k: rec[k] for k in keys} == {k: three[name][k] for k in keys}, name


def test_omnigibson_backend_without_omnigibson_says_how_to_install(tiny_checkpoint, tmp_path):
    from behavior_lab.eval.omnigibson_backend import omnigibson_available

    if omnigibson_available():
        pytest.skip("omnigibson is installed here; this checks the message shown when it is not")
    r = _eval(tiny_checkpoint, tmp_path, "backend=omnigibson")
    assert r.returncode != 0
    assert "OmniGibson 3.7" in (r.stdout + r.stderr) and "BEHAVIOR-1K" in (r.stdout + r.stderr)


def test_official_eval_command_shape():
    from pathlib import Path

    from behavior_lab.eval.omnigibson_backend import official_eval_command

    cmd = official_eval_command("turning_on_radio", Path("/r"), 8123, [0, 1])
    assert cmd[1:3] == ["-m", "omnigibson.learning.eval"]
    assert "policy=websocket" in cmd and "task.name=turning_on_radio" in cmd and "log_path=/r" in cmd
    assert "eval_instance_ids=[0,1]" in cmd and "model.port=8123" in cmd


@pytest.mark.skipif(importlib.util.find_spec("omnigibson") is None,
                    reason="omnigibson (OmniGibson 3.7.x on Isaac Sim, RTX GPU) is not installed")
def test_omnigibson_backend_runs_official_eval(tiny_checkpoint, tmp_path):
    r = _eval(tiny_checkpoint, tmp_path, "backend=omnigibson")
    assert r.returncode == 0, r.stderr[-3000:]
    assert list((tmp_path / "metrics").glob("turning_on_radio_*.json"))


def test_sigkilled_evaluation_resumes_with_every_episode_exactly_once(tiny_checkpoint, tmp_path):
    """A real process killed with SIGKILL mid-run, then the same command again."""
    import os
    import signal
    import time

    cmd = [sys.executable, "-m", "behavior_lab.cli.main", "eval", f"ckpt={tiny_checkpoint}",
           "tasks=[turning_on_radio]", "episodes_per_task=6", f"out={tmp_path}", "num_envs=2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "metrics"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.is_dir() and list(metrics.glob("*.json"))):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_text() for p in metrics.glob("*.json")}
    assert 1 <= len(before) < 6, "the kill should land mid-run"
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(p.name for p in metrics.glob("*.json"))
    assert names == sorted(f"turning_on_radio_{1000000 + i}_0.json" for i in range(6))
    for name, text in before.items():
        assert (metrics / name).read_text() == text  # finished results kept as they were
    summary = score_dir(metrics, tasks=["turning_on_radio"], expected=6)
    assert summary.tasks[0].episodes == 6
