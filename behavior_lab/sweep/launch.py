"""Parallel and cluster launching: the sweep's trainings mapped onto a Hydra multirun.

`behavior-lab sweep ... launcher=joblib` plans as usual, prepares the dataset, then starts

    behavior-lab sweep --multirun <the same overrides> worker.train=u<id1>,u<id2>,... hydra/launcher=joblib

so Hydra's launcher (basic, joblib, submitit_slurm, submitit_local) runs one job per pending
training. Each job re-plans from the same config (the plan is deterministic), runs its training and
that checkpoint's evaluations through the shared ledger, and exits; the parent follows the ledger
for its progress display and writes the report when the multirun returns. Ids carry a `u` prefix
so Hydra never reads an all-digit id as an integer.

GPUs: on a multi-GPU box each job takes one GPU (CUDA_VISIBLE_DEVICES for its stage commands):
job k prefers gpus[k % len(gpus)] and holds it with a file lock (out/.gpu_locks/), so two jobs
never share a GPU even when jobs finish out of order. Under submitit the scheduler assigns GPUs.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from behavior_lab.machine import cpu_cores
from behavior_lab.sweep.stages import bind_to_parent

LAUNCHERS = {
    "sequential": None,  # no multirun: this process runs every unit
    "basic": None,  # Hydra's built-in launcher: jobs one after another (checks the mapping)
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
}
# Keys of the parent's command line that the multirun (or a local job) sets itself.
OWN_KEYS = ("launcher", "launcher_overrides", "worker.train", "hydra/launcher", "jobs")
OWN_PREFIXES = ("launcher_params.",)


def check_launcher(name: str) -> None:
    if name not in LAUNCHERS:
        raise ValueError(f"launcher={name!r}; valid launchers: {', '.join(LAUNCHERS)}")
    plugin = LAUNCHERS[name]
    if plugin and not plugin_installed(plugin[0]):
        raise RuntimeError(
            f"launcher={name} needs the Hydra plugin {plugin[1]}: "
            f"pip install 'behavior_lab[slurm]' (or pip install {plugin[1]})"
        )


def plugin_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # not even the hydra_plugins namespace
        return False


def worker_ids(value) -> list[str]:
    """`worker.train` as Hydra hands it to one job (one id, or a list) -> unit ids."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v)[1:] if str(v).startswith("u") else str(v) for v in values]


def multirun_argv(
    task_overrides: Sequence[str],
    train_ids: Sequence[str],
    launcher: str,
    launcher_overrides: Sequence[str],
    n_gpus: int,
    python: str | None = None,
) -> list[str]:
    own = OWN_KEYS + (("gpus",) if launcher.startswith("submitit") else ())
    keep = _keep_overrides(task_overrides, own)
    # --multirun first: Hydra's argparse stops collecting overrides at a flag.
    argv = [
        python or sys.executable,
        "-m",
        "behavior_lab.cli.main",
        "sweep",
        "--multirun",
        *keep,
        "launcher=sequential",
        "worker.train=" + ",".join(f"u{i}" for i in train_ids),
    ]
    if launcher.startswith("submitit"):
        argv.append("gpus=[]")  # the scheduler sets CUDA_VISIBLE_DEVICES for each job
    if launcher != "basic":
        argv.append(f"hydra/launcher={launcher}")
    extra = list(launcher_overrides)
    if launcher == "joblib" and n_gpus and not any(o.startswith("hydra.launcher.n_jobs=") for o in extra):
        extra.append(f"hydra.launcher.n_jobs={n_gpus}")  # one job per GPU at a time
    return argv + extra


def _keep_overrides(task_overrides: Sequence[str], own: Sequence[str]) -> list[str]:
    return [
        o
        for o in task_overrides
        if o.split("=", 1)[0].lstrip("+~") not in own and not o.lstrip("+~").startswith(OWN_PREFIXES)
    ]


def resolve_jobs(spec) -> int:
    """`jobs`: auto = the machine's CPU cores (one 1-thread job per core), or a positive int."""
    if spec is None or spec == "auto":
        return cpu_cores()
    try:
        jobs = int(spec)
    except (TypeError, ValueError):
        raise ValueError(f"jobs={spec!r}: expected a positive integer or auto") from None
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: expected a positive integer or auto")
    return jobs


def thread_env(jobs: int) -> dict[str, str]:
    """Torch/OpenMP threads per stage when `jobs` stages share this machine's cores."""
    n = str(max(1, cpu_cores() // max(1, jobs)))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def local_job_argv(task_overrides: Sequence[str], train_ids: Sequence[str], python: str | None = None) -> list[str]:
    """One extra local job of a `jobs=N` sweep: the same sweep in worker mode over `train_ids`.
    Every job gets every pending training; the ledger hands each unit to exactly one of them."""
    return [
        python or sys.executable,
        "-m",
        "behavior_lab.cli.main",
        "sweep",
        *_keep_overrides(task_overrides, OWN_KEYS),
        "launcher=sequential",
        "jobs=1",
        "worker.train=[" + ",".join(f"u{i}" for i in train_ids) + "]",
    ]


def resolve_gpus(spec) -> list[str]:
    """`gpus`: auto = CUDA_VISIBLE_DEVICES if set, else every CUDA device torch sees; or a list."""
    if spec is None or spec == "auto":
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is not None:
            return [g for g in env.split(",") if g.strip()]
        try:
            import torch

            return [str(i) for i in range(torch.cuda.device_count())]
        except Exception:
            return []
    if isinstance(spec, (int, str)):
        spec = [spec]
    return [str(g) for g in spec]


class GpuSlot:
    """Holds one GPU for a job (file lock), preferring gpus[job % len(gpus)]; env for its stages."""

    def __init__(self, gpus: Sequence[str], job: int, lock_dir: Path, poll_s: float = 2.0):
        self.gpus, self.job, self.lock_dir, self.poll_s = list(gpus), int(job), Path(lock_dir), poll_s
        self._fh = None
        self.gpu: str | None = None

    def __enter__(self) -> GpuSlot:
        if not self.gpus:
            return self
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        order = [self.gpus[(self.job + i) % len(self.gpus)] for i in range(len(self.gpus))]
        while True:
            for gpu in order:
                fh = (self.lock_dir / f"gpu{gpu}.lock").open("w")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    continue
                self._fh, self.gpu = fh, gpu
                return self
            time.sleep(self.poll_s)

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    @property
    def env(self) -> dict[str, str]:
        return {} if self.gpu is None else {"CUDA_VISIBLE_DEVICES": self.gpu}


def run_multirun(argv: Sequence[str], log_path: Path, poll: Callable[[], None], interval_s: float = 3.0) -> int:
    """Run the multirun command, calling `poll()` every `interval_s` until it exits; returns its code."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        log.write(" ".join(argv) + "\n")
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=bind_to_parent if os.name == "posix" else None,
        )
        try:
            while proc.poll() is None:
                time.sleep(interval_s)
                poll()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
    poll()
    return proc.returncode
