"""`behavior-lab sweep` as a user runs it (subprocess, fake stages): the final line, a SIGKILL in
the middle and a rerun, the Hydra multirun mapping (basic launcher), GPU slots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from sweep_fakes import FAKE, cli_argv, cli_env, read_calls

from behavior_lab.sweep.launch import GpuSlot, multirun_argv, worker_ids

TASKS = "tasks=[turning_on_radio,picking_up_trash]"


def _sweep(tmp_path, calls, *extra, timeout=240):
    argv = cli_argv("ablation=smoke", TASKS, f"out={tmp_path / 'out'}", f"runner._target_={FAKE}", *extra)
    return subprocess.run(argv, capture_output=True, text=True, env=cli_env(calls), cwd=tmp_path, timeout=timeout)


def _trials(tmp_path):
    study = optuna.load_study(study_name="ledger", storage=f"sqlite:///{tmp_path / 'out' / 'ledger.db'}")
    return study.get_trials(deepcopy=False)


def test_cli_smoke_ends_with_report_line(tmp_path, calls):
    r = _sweep(tmp_path, calls)
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("sweep smoke complete") and last.endswith(str(tmp_path / "out" / "report" / "report.md"))
    assert Counter(c["stage"] for c in read_calls(calls))["train"] == 2


def test_sigkill_and_rerun_no_duplicates_no_gaps(tmp_path, calls):
    """Kill the sweep with SIGKILL mid-run; the rerun completes every unit exactly once and the
    units finished before the kill keep their trials and results."""
    argv = cli_argv(
        "ablation=smoke",
        TASKS,
        f"out={tmp_path / 'out'}",
        f"runner._target_={FAKE}",
        "+runner.delay_s=0.6",
        "seeds=[0,1]",
    )
    proc = subprocess.Popen(
        argv, env=cli_env(calls), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some, not all, units are finished
        if (tmp_path / "out" / "ledger.db").exists():
            try:
                done = [t for t in _trials(tmp_path) if t.state.name == "COMPLETE"]
            except Exception:
                done = []
            if len(done) >= 5:
                break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {
        t.user_attrs["unit_id"]: (t.number, t.value, t.user_attrs.get("metrics"))
        for t in _trials(tmp_path)
        if t.state.name == "COMPLETE"
    }
    running = [t for t in _trials(tmp_path) if t.state.name == "RUNNING"]
    # killed mid-sweep; usually mid-unit (one RUNNING trial), rarely in the few ms between two units
    assert 5 <= len(before) < 1 + 4 + 16 and len(running) <= 1, (len(before), len(running))
    r = _sweep(tmp_path, calls, "seeds=[0,1]")
    assert r.returncode == 0, r.stdout + r.stderr
    trials = _trials(tmp_path)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    ids = [t.user_attrs["unit_id"] for t in complete]
    assert len(ids) == len(set(ids)) == 1 + 4 + 16  # no duplicate, no missing unit
    for t in complete:  # finished before the kill: untouched
        if t.user_attrs["unit_id"] in before:
            assert before[t.user_attrs["unit_id"]] == (t.number, t.value, t.user_attrs.get("metrics"))
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert [t.number for t in failed] == [t.number for t in running]
    assert all("is gone" in t.user_attrs["error"] for t in failed)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    evals = Counter(c["stage"] for c in read_calls(calls))
    assert evals["train"] <= 4 + 1  # at most the interrupted training ran twice


def test_basic_launcher_maps_trainings_onto_a_multirun(tmp_path, calls):
    r = _sweep(tmp_path, calls, "launcher=basic", "gpus=[0,1]")
    assert r.returncode == 0, r.stdout + r.stderr
    log = read_calls(calls)
    trains = [c for c in log if c["stage"] == "train"]
    assert (
        len(trains) == 2 and len({c["pid"] for c in log if c["stage"] != "report"}) == 2
    )  # outer + jobs in one process
    # each multirun job ran on its own GPU (CUDA_VISIBLE_DEVICES from the job number)
    assert sorted(c["env"]["CUDA_VISIBLE_DEVICES"] for c in trains) == ["0", "1"]
    assert Counter(c["stage"] for c in log)["eval"] == 8
    text = (tmp_path / "out" / "logs" / "multirun-basic.log").read_text()
    assert "Launching 2 jobs locally" in text
    assert r.stdout.strip().splitlines()[-1].startswith("sweep smoke complete")


def test_multirun_argv_and_worker_ids():
    argv = multirun_argv(
        ["ablation=smoke", "launcher=joblib", "out=/x", "worker.train=ua", "+launcher_params.n_jobs=3"],
        ["0123", "ab"],
        "joblib",
        [],
        n_gpus=2,
        python="py",
    )
    assert not any("launcher_params" in a for a in argv)
    assert argv[:5] == ["py", "-m", "behavior_lab.cli.main", "sweep", "--multirun"]
    assert "launcher=joblib" not in argv and "launcher=sequential" in argv
    assert "worker.train=u0123,uab" in argv and "hydra/launcher=joblib" in argv
    assert "hydra.launcher.n_jobs=2" in argv
    slurm = multirun_argv(["gpus=[0]"], ["a"], "submitit_slurm", ["hydra.launcher.partition=gpu"], 0, "py")
    assert "gpus=[]" in slurm and "gpus=[0]" not in slurm and "hydra.launcher.partition=gpu" in slurm
    assert worker_ids("u0123") == ["0123"] and worker_ids(["ua", "ub"]) == ["a", "b"]


def test_local_jobs_split_the_units_and_the_cores(tmp_path, calls):
    """`jobs=2`: this process and one local copy share the ledger; every unit runs exactly once,
    both processes train, every stage gets cores/2 threads, and the report comes last."""
    r = _sweep(tmp_path, calls, "jobs=2", "+runner.delay_s=1.5", "seeds=[0,1]")  # > a job's start-up
    assert r.returncode == 0, r.stdout + r.stderr
    log = read_calls(calls)
    trains = [c for c in log if c["stage"] == "train"]
    assert len(trains) == 4 and len({c["pid"] for c in trains}) == 2
    evals = [c for c in log if c["stage"] == "eval"]
    assert len(evals) == 16 and len({(c["ckpt"], tuple(c["overrides"]), tuple(c["tasks"])) for c in evals}) == 16
    cores = len(os.sched_getaffinity(0))
    assert {c["env"]["OMP_NUM_THREADS"] for c in trains + evals} == {str(max(1, cores // 2))}
    assert [c["stage"] for c in log].count("data") == 1 and log[-1]["stage"] == "report"
    ids = [t.user_attrs["unit_id"] for t in _trials(tmp_path) if t.state.name == "COMPLETE"]
    assert len(ids) == len(set(ids)) == 1 + 4 + 16
    assert "jobs=1" in (tmp_path / "out" / "logs" / "job1.log").read_text().splitlines()[0]
    assert r.stdout.strip().splitlines()[-1].startswith("sweep smoke complete")


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_sigkill_with_local_jobs_leaves_no_orphan_and_rerun_completes(tmp_path, calls):
    """`jobs=2` killed with SIGKILL: the second job dies with the sweep (no orphan keeps writing), and
    the rerun completes every unit exactly once."""
    out = tmp_path / "out"
    argv = cli_argv("ablation=smoke", TASKS, f"out={out}", f"runner._target_={FAKE}", "+runner.delay_s=0.8",
                    "seeds=[0,1]", "jobs=2")
    proc = subprocess.Popen(argv, env=cli_env(calls), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # both jobs at work, some units finished
        log = read_calls(calls)
        if len({c["pid"] for c in log if c["stage"] == "eval"}) == 2 or len(log) >= 8:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while _processes_mentioning(str(out)) and time.time() < deadline:
        time.sleep(0.2)
    assert not _processes_mentioning(str(out))  # the job bound to the killed sweep is gone too
    r = _sweep(tmp_path, calls, "seeds=[0,1]", "jobs=2")
    assert r.returncode == 0, r.stdout + r.stderr
    complete = [t.user_attrs["unit_id"] for t in _trials(tmp_path) if t.state.name == "COMPLETE"]
    assert len(complete) == len(set(complete)) == 1 + 4 + 16
    assert not [t for t in _trials(tmp_path) if t.state.name == "RUNNING"]


def test_jobs_must_be_positive(tmp_path, calls):
    r = _sweep(tmp_path, calls, "jobs=0")
    assert r.returncode != 0 and "jobs=0" in (r.stdout + r.stderr)


def test_gpu_slots_never_share_a_gpu(tmp_path):
    with GpuSlot(["0", "1"], 0, tmp_path) as a, GpuSlot(["0", "1"], 2, tmp_path, poll_s=0.01) as b:
        assert {a.gpu, b.gpu} == {"0", "1"}  # job 2 prefers GPU 0, which job 0 holds
        assert a.env == {"CUDA_VISIBLE_DEVICES": a.gpu}
    with GpuSlot([], 3, tmp_path) as c:
        assert c.env == {}


def test_missing_launcher_plugin_says_how_to_install(tmp_path, calls):
    from behavior_lab.sweep.launch import plugin_installed

    if plugin_installed("hydra_plugins.hydra_joblib_launcher"):
        return  # installed here: nothing to check
    r = _sweep(tmp_path, calls, "launcher=joblib")
    assert r.returncode != 0 and "pip install" in (r.stdout + r.stderr)


@pytest.mark.parametrize(
    "launcher,plugin,extra",
    [
        ("joblib", "hydra_plugins.hydra_joblib_launcher", ["gpus=[0,1]"]),
        ("submitit_local", "hydra_plugins.hydra_submitit_launcher", ["+launcher_params.timeout_min=10"]),
    ],
)
def test_plugin_launchers_run_jobs_in_parallel(tmp_path, calls, launcher, plugin, extra):
    """Optional plugins (pip install 'behavior_lab[slurm]'): one worker process per training."""
    from behavior_lab.sweep.launch import plugin_installed

    if not plugin_installed(plugin):
        pytest.skip(f"{plugin} is not installed (pip install 'behavior_lab[slurm]')")
    r = _sweep(tmp_path, calls, f"launcher={launcher}", "+runner.delay_s=0.5", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    trains = [c for c in read_calls(calls) if c["stage"] == "train"]
    assert len({c["pid"] for c in trains}) == 2  # two worker processes
    if launcher == "joblib":  # each job holds its own GPU
        assert sorted(c["env"]["CUDA_VISIBLE_DEVICES"] for c in trains) == ["0", "1"]
    else:  # submitit: the scheduler assigns GPUs, the sweep does not
        assert all("CUDA_VISIBLE_DEVICES" not in c["env"] for c in trains)
    assert Counter(c["stage"] for c in read_calls(calls))["eval"] == 8


def test_two_concurrent_sweeps_split_the_work(tmp_path, calls):
    """Two copies of the same command on one ledger: every unit runs once, both processes work."""
    argv = cli_argv(
        "ablation=smoke",
        TASKS,
        f"out={tmp_path / 'out'}",
        f"runner._target_={FAKE}",
        "+runner.delay_s=0.4",
        "seeds=[0,1,2]",
    )
    procs = [
        subprocess.Popen(
            argv, env=cli_env(calls), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    log = read_calls(calls)
    trains = [c for c in log if c["stage"] == "train"]
    evals = [c for c in log if c["stage"] == "eval"]
    assert len(trains) == 6 and len(evals) == 24  # no unit ran twice
    assert len({c["pid"] for c in trains}) == 2  # both processes trained something
    done = [t for t in _trials(tmp_path) if t.state.name == "COMPLETE"]
    assert len(done) == len({t.user_attrs["unit_id"] for t in done}) == 1 + 6 + 24


def test_stage_processes_die_with_a_killed_sweep(tmp_path):
    """A stage subprocess is bound to the sweep (PR_SET_PDEATHSIG): SIGKILL on the sweep ends it."""
    code = (
        "import subprocess, sys, time; from behavior_lab.sweep.stages import bind_to_parent;"
        "p = subprocess.Popen(['sleep', '60'], preexec_fn=bind_to_parent); print(p.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the stage process outlived the killed sweep")
