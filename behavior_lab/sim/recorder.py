"""Record scripted demonstrations of the embedded suite into a BEHAVIOR-layout LeRobot v2.1 dataset.

For each task, expert rollouts run on consecutive *train* instances; failed rollouts are dropped
(and the next instance is tried), successful ones go to ``behavior_lab.data.writer.DatasetWriter``
with their skill annotations. Rollouts can run in spawned worker processes; the parent alone
writes, in instance order, so the dataset does not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from behavior_lab.data import schema

ATTEMPT_FACTOR = 3  # give up on a task after this many times episodes_per_task failed attempts + N


@dataclass
class Rollout:
    task: str
    instance: int
    success: bool
    steps: int
    frames: dict
    annotations: dict
    seconds: float


_ENVS: dict = {}


def _env(task: str, image_size: int):
    key = (task, image_size)
    if key not in _ENVS:
        from behavior_lab.sim.registry import make_env

        _ENVS[key] = make_env(task, image_size=image_size)
    return _ENVS[key]


def expert_rng(seed: int, task: str, instance: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), schema.task_id(task), int(instance)])


def run_rollout(task: str, instance: int, seed: int, image_size: int, perturb=None) -> Rollout:
    """One expert demo with images (runs in the parent or in a worker process).

    ``perturb``: an ``experts.Perturbation`` (DART noise on the executed actions) or None."""
    from behavior_lab.sim.experts import make_expert

    t0 = time.perf_counter()
    env = _env(task, image_size)
    result = make_expert(env, expert_rng(seed, task, instance)).run(instance, render=True, perturb=perturb)
    ann = result.annotations
    ann["meta_data"].update({"seed": int(seed), "success": bool(result.success), "q_score": result.info["q_score"]})
    if perturb is not None and perturb.active:
        ann["meta_data"]["perturbation"] = {"arm": perturb.arm, "base": perturb.base, "tau": perturb.tau}
    return Rollout(task, instance, result.success, result.steps, result.frames if result.success else {},
                   ann, time.perf_counter() - t0)


def _rollouts(task: str, instances: Sequence[int], seed: int, image_size: int,
              pool: ProcessPoolExecutor | None, perturb=None) -> Iterator[Rollout]:
    if pool is None:
        for inst in instances:
            yield run_rollout(task, inst, seed, image_size, perturb)
        return
    window = 2 * pool._max_workers  # noqa: SLF001 - bounded look-ahead keeps memory flat
    pending = []
    it = iter(instances)
    for inst in it:
        pending.append(pool.submit(run_rollout, task, inst, seed, image_size, perturb))
        if len(pending) >= window:
            break
    while pending:
        fut = pending.pop(0)
        yield fut.result()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(pool.submit(run_rollout, task, nxt, seed, image_size, perturb))


def record_demos(tasks: Sequence[str], episodes_per_task: int, out: str | Path, seed: int = 0, workers: int = 1,
                 image_size: int = 64, codec: str = "libx264", progress: bool = True,
                 append: bool = False, perturb=None) -> dict:
    """Write ``episodes_per_task`` successful demos per task to ``out``; returns a summary dict.

    ``perturb`` (``experts.Perturbation``): DART-style noise on the executed actions, the labels
    staying the expert's; rollouts the noise makes fail are dropped like any failed rollout."""
    from behavior_lab.data.writer import DatasetWriter
    from behavior_lab.sim.env import MiniBehaviorEnv
    from behavior_lab.sim.registry import get_task

    task_defs = [get_task(t) for t in tasks]  # fails early, with suggestions, on a bad name
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task={episodes_per_task}: expected >= 1")
    out = Path(out).expanduser()
    writer = DatasetWriter(out, fps=schema.CONTROL_HZ, codec=codec, append=append,
                           task_prompts={t.task_id: t.description for t in task_defs})
    summary: dict = {"root": str(out), "tasks": {}}
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(max_workers=int(workers), mp_context=mp.get_context("spawn"))
    bar = _progress(progress)
    try:
        with bar:
            for tdef in task_defs:
                max_attempts = ATTEMPT_FACTOR * episodes_per_task + 5
                instances = MiniBehaviorEnv.instances("train", max_attempts)
                bar_task = bar.add_task(tdef.name, total=episodes_per_task)
                ok, tried, lengths, seconds = 0, 0, [], []
                for r in _rollouts(tdef.name, instances, seed, image_size, pool, perturb):
                    tried += 1
                    seconds.append(r.seconds)
                    if r.success:
                        writer.add_episode(tdef.task_id, r.frames, r.annotations)
                        ok += 1
                        lengths.append(r.steps)
                        bar.update(bar_task, advance=1)
                    if ok >= episodes_per_task:
                        break
                if ok < episodes_per_task:
                    raise RuntimeError(f"{tdef.name}: only {ok} of {tried} expert rollouts succeeded; "
                                       f"wanted {episodes_per_task}")
                summary["tasks"][tdef.name] = {
                    "episodes": ok, "attempts": tried, "success_rate": ok / tried,
                    "mean_length": float(np.mean(lengths)), "seconds_per_attempt": float(np.mean(seconds)),
                }
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    writer.finalize()
    return summary


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass


def _progress(enabled: bool):
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn())
