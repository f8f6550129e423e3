"""Benchmarks of the embedded suite (run with ``behavior-lab bench sim``).

- ``sim.physics_steps``: env steps/s without rendering (target >= 500 on the 2-core machine).
- ``sim.render_steps``: env steps/s with the three 64 px cameras rendered every step (target >= 40).
- ``sim.demo_seconds``: wall seconds per recorded expert demo (64 px, three cameras, encoded), per task.
- ``sim.expert_success``: scripted-expert success rate and mean demo length per task.
"""

from __future__ import annotations

import time

import numpy as np

from behavior_lab.benchmarks import register

BENCH_TASK = "picking_up_trash"


def _wiggle_actions(env, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = env.home_action()
    return [base + np.r_[rng.uniform(-0.3, 0.3, 3), rng.normal(0, 0.05, 20)] for _ in range(n)]


def _steps_per_s(render: bool, n: int, image_size: int = 64) -> float:
    from behavior_lab.sim import make_env

    env = make_env(BENCH_TASK, image_size=image_size)
    env.reset(0, render=render)
    actions = _wiggle_actions(env, n)
    env.step(actions[0], render=render)  # warm up (renderer creation)
    t0 = time.perf_counter()
    for a in actions:
        env.step(a, render=render)
    dt = time.perf_counter() - t0
    env.close()
    return n / dt


@register("sim.physics_steps")
def physics_steps(quick: bool = False) -> dict:
    """Env steps/s, physics only (17 x 2 ms substeps per step), trash task."""
    n = 300 if quick else 1500
    return {"env_steps_per_s": round(_steps_per_s(False, n), 1), "steps": n}


@register("sim.render_steps")
def render_steps(quick: bool = False) -> dict:
    """Env steps/s with three 64 px RGB cameras rendered each step, trash task."""
    n = 60 if quick else 300
    return {"env_steps_per_s_64px": round(_steps_per_s(True, n, 64), 1), "steps": n}


@register("sim.demo_seconds")
def demo_seconds(quick: bool = False) -> dict:
    """Wall seconds per recorded demo (expert + 3 x 64 px cameras + video encoding + parquet), per task."""
    import tempfile

    from behavior_lab.sim import TASKS
    from behavior_lab.sim.recorder import record_demos

    out = {}
    reps = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        for task in TASKS:
            t0 = time.perf_counter()
            summary = record_demos([task], reps, f"{tmp}/{task}", image_size=64, progress=False)
            dt = time.perf_counter() - t0
            s = summary["tasks"][task]
            out[f"{task}.seconds_per_demo"] = round(dt / reps, 2)
            out[f"{task}.frames_per_s"] = round(s["mean_length"] * reps / dt, 1)
    return out


@register("sim.expert_success")
def expert_success(quick: bool = False) -> dict:
    """Scripted-expert success rate and mean demo length per task (physics only, train instances)."""
    from behavior_lab.sim import TASKS, make_env
    from behavior_lab.sim.experts import make_expert
    from behavior_lab.sim.recorder import expert_rng

    n = 5 if quick else 20
    out = {}
    for task in TASKS:
        env = make_env(task)
        results = [make_expert(env, expert_rng(0, task, i)).run(i, render=False) for i in env.instances("train", n)]
        out[f"{task}.success_rate"] = sum(r.success for r in results) / n
        out[f"{task}.mean_length"] = round(float(np.mean([r.steps for r in results if r.success] or [0])), 1)
        out[f"{task}.mean_q"] = round(float(np.mean([r.info["q_score"] for r in results])), 3)
    out["instances_per_task"] = n
    return out
