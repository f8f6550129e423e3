"""A fast, deterministic StageRunner for the sweep tests (no model, no simulator).

It writes what the real commands write — a dataset folder, an export folder holding the
training's overrides, metrics JSONs in the BEHAVIOR per-episode format — and appends one line
per call to `<calls>` (a JSONL file shared across processes), so tests count trainings and
evaluations even across a killed sweep and its rerun. Scores depend on the toggles, so reports
see real effects: q = 0.3 + 0.3 * correlated_noise + 0.2 * inpainting (+ a small per-episode term).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path


class FakeStageRunner:
    def __init__(
        self,
        calls: str | None = None,
        delay_s: float = 0.0,
        fail_train: str | None = None,
        fail_eval_task: str | None = None,
        env: dict | None = None,
        timeout_s=None,
        extra=None,
    ):
        self.calls = calls or os.environ.get("SWEEP_FAKE_CALLS")
        self.delay_s = float(delay_s)
        self.fail_train = fail_train  # fail trainings whose overrides contain this string
        self.fail_eval_task = fail_eval_task
        self.env = dict(env or {})

    def with_env(self, env):
        return FakeStageRunner(self.calls, self.delay_s, self.fail_train, self.fail_eval_task, {**self.env, **env})

    def _log(self, **rec) -> None:
        if not self.calls:
            return
        with open(self.calls, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            # what a real stage's environment holds: inherited thread settings + this runner's env
            inherited = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
            fh.write(json.dumps({**rec, "pid": os.getpid(), "env": {**inherited, **self.env}}) + "\n")

    def prepare_data(self, tasks, episodes_per_task, seed, overrides, out, stats_overrides=()):
        root = Path(out) / "dataset"
        (root / "meta").mkdir(parents=True, exist_ok=True)
        (root / "meta" / "info.json").write_text(json.dumps({"tasks": list(tasks), "episodes": episodes_per_task}))
        self._log(stage="data", tasks=list(tasks))
        return root

    def train(self, overrides, data_root, out):
        time.sleep(self.delay_s)
        if self.fail_train and any(self.fail_train in o for o in overrides):
            raise RuntimeError(f"injected training failure for {self.fail_train}")
        export = Path(out) / "export"
        export.mkdir(parents=True, exist_ok=True)
        (export / "config.json").write_text(json.dumps({"overrides": list(overrides), "data": str(data_root)}))
        self._log(stage="train", overrides=list(overrides))
        return export

    def eval(self, ckpt, overrides, tasks, episodes_per_task, out):
        time.sleep(self.delay_s)
        train = json.loads((Path(ckpt) / "config.json").read_text())["overrides"]
        every = list(train) + list(overrides)
        metrics = Path(out) / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        for task in tasks:
            if task == self.fail_eval_task:
                raise RuntimeError(f"injected evaluation failure on {task}")
            base = 0.3 + 0.3 * ("innovation/correlated_noise=on" in every) + 0.2 * ("innovation/inpainting=on" in every)
            for beta in [o.split("=", 1)[1] for o in every if o.startswith("innovation.correlated_noise.beta=")]:
                base = 0.2 + 0.6 * (1 - abs(float(beta) - 0.7))  # the search's optimum: beta = 0.7
            for i in range(episodes_per_task):
                q = min(1.0, max(0.0, base + 0.01 * i))
                body = {
                    "q_score": {"final": q},
                    "time": {"simulator_steps": 100, "simulator_time": 3.3, "normalized_time": 1.2},
                    "agent_distance": {"base": 1.0, "left": 0.5, "right": 0.5},
                    "normalized_agent_distance": {"base": 1.0, "left": 1.0, "right": 1.0},
                    "success": q >= 1.0,
                    "task": task,
                    "instance": i,
                    "rollout": 0,
                }
                (metrics / f"{task}_{i}_0.json").write_text(json.dumps(body))
        self._log(stage="eval", tasks=list(tasks), overrides=list(overrides), ckpt=str(ckpt))
        return metrics

    def report(self, results, out, overrides=()):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        n = len(list(Path(results).rglob("*.json")))
        (out / "report.md").write_text(f"fake report over {n} files; overrides {list(overrides)}\n")
        self._log(stage="report", results=str(results))
        return out / "report.md"


def read_calls(path) -> list[dict]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


# --- composing and launching the sweep like the CLI does ---------------------------------------------
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FAKE = "sweep_fakes.FakeStageRunner"


def compose_sweep(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from behavior_lab.cli.main import CONF_DIR, extra_search_paths

    sp = ",".join(f"file://{p}" for p in extra_search_paths())
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="sweep", overrides=[*overrides, f"hydra.searchpath=[{sp}]"])
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    return plain


def cli_env(calls: Path | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")])
    if calls is not None:
        env["SWEEP_FAKE_CALLS"] = str(calls)
    return env


def cli_argv(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "behavior_lab.cli.main", "sweep", *overrides]


class FakeStagesRealReport(FakeStageRunner):
    """Fake dataset/training/evaluation, but the real `behavior-lab report` subprocess."""

    def report(self, results, out, overrides=()):
        from behavior_lab.sweep.stages import CommandStageRunner

        self._log(stage="report", results=str(results))
        return CommandStageRunner().report(results, out, overrides)
