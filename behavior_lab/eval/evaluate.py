"""`evaluate(cfg)`: roll a checkpoint out on a task subset and write per-episode metrics JSONs.

Backends: `embedded` (the MuJoCo mini-BEHAVIOR suite, in process, batched in lockstep) and
`omnigibson` (in process when `omnigibson` is importable; otherwise pair `behavior-lab serve` with
OmniGibson's official `eval.py policy=websocket`, see README). Timeouts are 2x the mean
demonstration length per task (facts §3.1), read from the checkpoint's dataset statistics.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from behavior_lab.data import schema
from behavior_lab.eval.episodes import hash_config, hash_path, is_done, plan_episodes
from behavior_lab.eval.runner import LockstepRunner, TaskReference

log = logging.getLogger(__name__)


def _human_references(data_root: str | None) -> dict[int, dict[str, float]]:
    """Per-task mean demo distances from meta/episodes.jsonl (written by DatasetWriter), if reachable."""
    if not data_root:
        return {}
    path = Path(data_root) / "meta" / "episodes.jsonl"
    if not path.is_file():
        return {}
    sums: dict[int, dict[str, float]] = {}
    counts: dict[int, int] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        ep = json.loads(line)
        if "distance_traveled" not in ep:
            return {}
        tid = int(ep["episode_index"]) // 10000
        acc = sums.setdefault(tid, {"base": 0.0, "left": 0.0, "right": 0.0})
        acc["base"] += float(ep["distance_traveled"])
        acc["left"] += float(ep["left_eef_displacement"])
        acc["right"] += float(ep["right_eef_displacement"])
        counts[tid] = counts.get(tid, 0) + 1
    return {t: {k: v / counts[t] for k, v in d.items()} for t, d in sums.items()}


def task_references(tasks: list[str], norm_stats: Any, data_root: str | None,
                    env_default_steps: dict[str, int], timeout_factor: float = 2.0) -> dict[str, TaskReference]:
    distances = _human_references(data_root)
    refs = {}
    for task in tasks:
        tid = schema.task_id(task)
        mean_len = None
        if norm_stats is not None and getattr(norm_stats, "task_mean_length", None):
            mean_len = norm_stats.task_mean_length.get(tid)
        if mean_len is None:
            max_steps = env_default_steps[task]
            log.warning("no demonstration length for %s in the checkpoint's stats; timeout %d steps "
                        "(the simulator's default)", task, max_steps)
        else:
            max_steps = int(timeout_factor * float(mean_len))
        refs[task] = TaskReference(max_steps=max_steps, human_mean_steps=mean_len,
                                   human_distance=distances.get(tid))
    return refs


def _runtime_cfg(cfg: DictConfig) -> dict:
    node = {"policy": OmegaConf.to_container(cfg.policy, resolve=True)}
    if cfg.get("innovation") is not None:
        node["innovation"] = OmegaConf.to_container(cfg.innovation, resolve=True)
    return node


def evaluate(cfg: DictConfig) -> dict:
    """Run the evaluation described by the `eval` config; returns the score summary dict."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from behavior_lab.eval.scoring import load_metrics_dir, score_dir, score_episodes
    from behavior_lab.policy.loading import load_checkpoint
    from behavior_lab.policy.runtime import PolicyRuntime

    out = Path(cfg.out)
    tasks = [schema.task_name(schema.task_id(t)) for t in cfg.tasks]
    expected = int(cfg.episodes_per_task) * int(cfg.rollouts)
    if cfg.backend == "omnigibson":
        from behavior_lab.eval.omnigibson_backend import run_official_eval

        summary = score_dir(run_official_eval(cfg, tasks), tasks=tasks, expected=expected)
        _print_summary(summary, {})
        return {"summary": summary.overall_dict(), "stats": {}, "out": str(out)}
    torch.manual_seed(int(cfg.seed))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    model, norm_stats, model_cfg = load_checkpoint(cfg.ckpt, device=str(cfg.device),
                                                  inference_overrides=cfg.get("innovation"))
    if hasattr(model, "eval"):
        model.eval()
    runtime = PolicyRuntime(model, norm_stats, _runtime_cfg(cfg))
    env_factory, instances_of, default_steps = _backend(cfg, model_cfg, tasks)
    data_root = OmegaConf.select(model_cfg, "data.root") if model_cfg is not None else None
    refs = task_references(tasks, norm_stats, data_root, default_steps, float(cfg.timeout_factor))

    run_cfg = {"eval": OmegaConf.to_container(cfg, resolve=True)}
    for key in ("out", "num_envs", "video", "trace"):  # where and what to write, not what is measured
        run_cfg["eval"].pop(key, None)
    runner = LockstepRunner(env_factory, runtime, refs, out, num_envs=int(cfg.num_envs),
                            config_hash=hash_config(run_cfg), ckpt_hash=hash_path(Path(cfg.ckpt)),
                            record_video=bool(cfg.video), trace=bool(cfg.get("trace", False)))
    (out).mkdir(parents=True, exist_ok=True)
    (out / "eval_config.yaml").write_text(OmegaConf.to_yaml(cfg))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        for task in tasks:
            specs = plan_episodes(task, instances_of(task, int(cfg.episodes_per_task)),
                                  int(cfg.rollouts), base_seed=int(cfg.seed))
            tid = bar.add_task(task, total=len(specs))
            runner.on_episode_done = lambda spec, rec, tid=tid: bar.advance(tid)
            bar.advance(tid, sum(is_done(out, s) for s in specs))  # finished before a restart
            runner.run(specs)
    episodes = load_metrics_dir(out / "metrics")
    summary = score_episodes(episodes, tasks=tasks, expected=expected)
    _print_summary(summary, runner.stats, reach_summary(episodes))
    return {"summary": summary.overall_dict(),
            "stats": runner.stats, "out": str(out)}


def _backend(cfg: DictConfig, model_cfg: Any, tasks: list[str]):
    if cfg.backend == "embedded":
        from behavior_lab.sim import make_env
        from behavior_lab.sim.registry import get_task

        size = cfg.image_size
        if size is None and model_cfg is not None:
            size = OmegaConf.select(model_cfg, "data.image_size")
        size = int(size or 64)
        env_kwargs = dict(image_size=size)

        def factory(task: str):
            return make_env(task, **env_kwargs)

        split = str(cfg.split)

        def instances_of(task: str, n: int) -> list[int]:
            from behavior_lab.sim.env import MiniBehaviorEnv

            return MiniBehaviorEnv.instances(split, n)

        defaults = {t: int(get_task(t).max_steps) for t in tasks}
        return factory, instances_of, defaults
    raise ValueError(f"unknown eval backend {cfg.backend!r}; valid: embedded, omnigibson")


def reach_summary(episodes) -> dict[str, tuple[float, float]]:
    """{task: (median closest approach in cm, share of episodes with a grasp)} over the episodes
    that carry reach and grasp diagnostics (embedded suite); the share is NaN for tasks with
    nothing to grasp."""
    by_task: dict[str, list] = {}
    for ep in episodes:
        if ep.closest_approach == ep.closest_approach:  # not NaN
            by_task.setdefault(ep.task, []).append(ep)
    out = {}
    for task, eps in by_task.items():
        grasps = [e.grasp_events for e in eps if e.grasp_events == e.grasp_events]
        out[task] = (float(np.median([e.closest_approach for e in eps])) * 100.0,
                     float(np.mean([g > 0 for g in grasps])) if grasps else float("nan"))
    return out


def _print_summary(summary, stats: dict, reach: dict[str, tuple[float, float]] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    reach = reach or {}
    table = Table(title="evaluation")
    cols = ["task", "episodes", "q_score", "q 95% CI", "success_rate"]
    if reach:  # embedded suite: how close the hands came (median over episodes) and how often they grasped
        cols += ["closest cm", "grasped"]
    for col in cols:
        table.add_column(col, justify="right" if col != "task" else "left")
    for t in summary.tasks:
        row = [t.task, f"{t.episodes}/{t.expected}", f"{t.q_score:.3f}",
               f"[{t.q_ci.low:.3f}, {t.q_ci.high:.3f}]", f"{t.success_rate:.3f}"]
        if reach:
            near, share = reach.get(t.task, (float("nan"), float("nan")))
            row += ["—" if near != near else f"{near:.1f}", "—" if share != share else f"{share:.2f}"]
        table.add_row(*row)
    table.add_row("overall", "", f"{summary.q_score:.3f}",
                  f"[{summary.q_ci.low:.3f}, {summary.q_ci.high:.3f}]", f"{summary.task_sr:.3f}")
    Console().print(table)
    if stats.get("wall_s"):
        Console().print(f"{stats['env_steps']} env steps in {stats['wall_s']:.1f} s "
                        f"({stats['env_steps'] / stats['wall_s']:.0f} steps/s, {stats['renders']} renders)")
