"""How the sweep runs the other commands: the `StageRunner` seam and its default implementation.

`CommandStageRunner` runs each stage as its own process, `python -m behavior_lab.cli.main <cmd>
<overrides>`, exactly as a user would type `behavior-lab <cmd> ...`. A subprocess rather than an
in-process `hydra.compose` + `run(cfg)` because:
- a crash (MuJoCo/EGL segfault, CUDA OOM, an exception deep in Lightning) fails one unit, not the
  sweep, and the ledger records it;
- every training starts with fresh memory (torch caches, CUDA context, dataloader workers) and
  frees all of it at exit: a 64-cell sweep in one process would accumulate;
- Hydra's global state stays clean (the sweep is itself a Hydra app; composing inside a running
  Hydra app needs GlobalHydra juggling), and CUDA_VISIBLE_DEVICES can differ per stage;
- the child is bound to the sweep with PR_SET_PDEATHSIG, so a sweep killed with SIGKILL takes its
  running stage with it and a rerun never races an orphan on the same run folder.
The cost is a Python + torch import per stage (a few seconds), small next to a training or an
evaluation.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from behavior_lab.sweep.units import format_override_value


class StageError(RuntimeError):
    """A stage command failed; the message names the command, its exit code and its log."""


@runtime_checkable
class StageRunner(Protocol):
    """What the sweep needs of the other commands. Optional: `with_env(env) -> StageRunner`, a copy
    whose stages run with extra environment variables (a multirun job's CUDA_VISIBLE_DEVICES)."""

    def prepare_data(
        self,
        tasks: Sequence[str],
        episodes_per_task: int,
        seed: int,
        overrides: Sequence[str],
        out: Path,
        stats_overrides: Sequence[str] = (),
    ) -> Path:
        """Generate a dataset for `tasks` (demos + stats) under `out`; returns the dataset root."""

    def train(self, overrides: Sequence[str], data_root: Path, out: Path) -> Path:
        """One training with `overrides`; returns the exported checkpoint directory."""

    def eval(
        self, ckpt: Path, overrides: Sequence[str], tasks: Sequence[str], episodes_per_task: int, out: Path
    ) -> Path:
        """Roll out `ckpt` with inference `overrides`; returns the folder holding the metrics JSONs."""

    def report(self, results: Path, out: Path, overrides: Sequence[str] = ()) -> Path:
        """Plots + tables from the results tree `results` into `out`; returns the report's main file."""


def bind_to_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass  # not Linux: an orphaned stage finishes on its own


class CommandStageRunner:
    """StageRunner that runs `behavior-lab <cmd>` subprocesses (see module docstring for why)."""

    def __init__(
        self,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        extra: Mapping[str, Sequence[str]] | None = None,
    ):
        self.python = python or sys.executable
        self.env = dict(env or {})
        self.timeout_s = timeout_s
        self.extra = {k: list(v) for k, v in (extra or {}).items()}  # per-command extra overrides

    def with_env(self, env: Mapping[str, str]) -> CommandStageRunner:
        return CommandStageRunner(self.python, {**self.env, **env}, self.timeout_s, self.extra)

    def command(self, cmd: str, overrides: Sequence[str]) -> list[str]:
        return [self.python, "-m", "behavior_lab.cli.main", cmd, *overrides, *self.extra.get(cmd, [])]

    def run(self, cmd: str, overrides: Sequence[str], log_dir: Path) -> str:
        """Run one command; stdout/stderr go to `log_dir/<cmd>.{out,err}`; returns stdout."""
        log_dir.mkdir(parents=True, exist_ok=True)
        out_path, err_path = log_dir / f"{cmd}.out", log_dir / f"{cmd}.err"
        argv = self.command(cmd, overrides)
        (log_dir / f"{cmd}.argv").write_text(" ".join(argv) + "\n")
        env = {**os.environ, **self.env}
        with out_path.open("w") as fo, err_path.open("w") as fe:
            proc = subprocess.Popen(
                argv,
                stdout=fo,
                stderr=fe,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=bind_to_parent if os.name == "posix" else None,
            )
            try:
                rc = proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise StageError(f"`behavior-lab {cmd}` exceeded {self.timeout_s} s; log: {err_path}") from None
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if rc != 0:
            tail = "\n".join(err_path.read_text(errors="replace").strip().splitlines()[-15:])
            raise StageError(f"`behavior-lab {cmd}` exited with {rc}; log: {err_path}\n{tail}")
        return out_path.read_text(errors="replace")

    def prepare_data(self, tasks, episodes_per_task, seed, overrides, out, stats_overrides=()):
        out = Path(out)
        root = out / "dataset"
        self.run(
            "demos",
            [
                f"tasks={format_override_value(list(tasks))}",
                f"episodes_per_task={episodes_per_task}",
                f"out={root}",
                f"seed={seed}",
                *overrides,
            ],
            out / "logs",
        )
        self.run("stats", [f"data.root={root}", *stats_overrides], out / "logs")
        return root

    def train(self, overrides, data_root, out):
        out = Path(out)
        stdout = self.run("train", [f"data.root={data_root}", f"out={out}", *overrides], out / "logs")
        return last_path(stdout, f"`behavior-lab train` (log {out / 'logs' / 'train.out'})")

    def eval(self, ckpt, overrides, tasks, episodes_per_task, out):
        out = Path(out)
        self.run(
            "eval",
            [
                f"ckpt={ckpt}",
                f"tasks={format_override_value(list(tasks))}",
                f"episodes_per_task={episodes_per_task}",
                f"out={out}",
                *overrides,
            ],
            out / "logs",
        )
        metrics = out / "metrics"
        if not metrics.is_dir():
            raise StageError(f"`behavior-lab eval` exited 0 but wrote no {metrics}/ (log {out / 'logs' / 'eval.out'})")
        return metrics

    def report(self, results, out, overrides=()):
        stdout = self.run("report", [f"results={results}", f"out={out}", *overrides], Path(out) / "logs")
        try:
            return last_path(stdout, "`behavior-lab report`")
        except StageError:
            return Path(out)


def last_path(stdout: str, what: str) -> Path:
    """The last printed line that names an existing path (DESIGN §6: the output path comes last)."""
    for line in reversed(stdout.strip().splitlines()):
        candidate = line.strip().split()[-1] if line.strip() else ""
        for text in (line.strip(), candidate):
            if text and Path(text).exists():
                return Path(text).resolve()
    raise StageError(f"{what} printed no existing path as its last line")
