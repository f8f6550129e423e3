"""Evaluation benchmarks: closed-loop env steps/s with the tiny policy in the loop, s/episode/task.

The policy is the CPU `tiny` preset at random init (speed does not depend on the weights; a random
policy runs every episode to its timeout, so seconds/episode are worst cases). Cameras are rendered
only at replans (every 20 steps), as in `behavior-lab eval`.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from behavior_lab.benchmarks import register


def tiny_checkpoint(root: Path, mean_lengths: dict[int, float]) -> Path:
    """Export the CPU `tiny` preset at random init with minimal stats (benchmarks and tests)."""
    from omegaconf import OmegaConf

    from behavior_lab.data import schema
    from behavior_lab.data.stats import NormStats
    from behavior_lab.serving.bench import tiny_model
    from behavior_lab.training.export import export_checkpoint

    model, cfg = tiny_model()
    stats = NormStats(
        action_mean=np.zeros((30, 32)), action_std=np.full((30, 32), 0.05),
        action_global_mean=np.zeros(32), action_global_std=np.ones(32),
        action_q01=-np.ones(32), action_q99=np.ones(32),
        state_mean=np.zeros(32), state_std=np.ones(32), state_q01=-np.ones(32), state_q99=np.ones(32),
        task_num_stages={}, task_mean_length=mean_lengths, delta_mask=schema.DELTA_ACTION_MASK.copy(),
    )
    meta = root / "data" / "meta"
    meta.mkdir(parents=True)
    np.savez(meta / "action_correlation.npz", cholesky=np.eye(960))
    obj = stats.to_json()
    obj["correlation"] = {"file": "action_correlation.npz", "sha256": None}
    (meta / "norm_stats.json").write_text(json.dumps(obj))
    return export_checkpoint(root / "export", model.state_dict(), OmegaConf.to_container(cfg), root / "data")


@register("eval.closed_loop")
def closed_loop(quick: bool = False) -> dict:
    """Env steps/s with the tiny policy (4 envs in lockstep) and seconds per episode per task."""
    import torch
    from omegaconf import OmegaConf

    from behavior_lab.data import schema
    from behavior_lab.eval.evaluate import evaluate
    from behavior_lab.sim.registry import TASKS, get_task

    tasks = TASKS[:2] if quick else TASKS
    lengths = {schema.task_id(t): float(get_task(t).mean_demo_length) for t in tasks}
    conf = Path(__file__).resolve().parent.parent / "conf"
    # the policy settings `behavior-lab eval` composes: conf/policy/default.yaml under eval.yaml's own
    # `policy:` keys (batch_invariant: one model call per replanning env)
    policy_cfg = OmegaConf.merge(OmegaConf.load(conf / "policy" / "default.yaml"),
                                 OmegaConf.load(conf / "eval.yaml").get("policy") or {})
    figures: dict = {}
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = tiny_checkpoint(Path(tmp), lengths)
        total_steps, total_s = 0, 0.0
        for task in tasks:
            cfg = OmegaConf.create({
                "ckpt": str(ckpt), "tasks": [task], "episodes_per_task": 4, "rollouts": 1, "split": "public",
                "out": f"{tmp}/eval_{task}", "backend": "embedded", "num_envs": 4, "image_size": 64,
                "timeout_factor": 2.0, "video": False, "device": "cpu", "seed": 0, "threads": 1,
                "policy": policy_cfg, "innovation": None,
            })
            t0 = time.perf_counter()
            result = evaluate(cfg)
            wall = time.perf_counter() - t0
            stats = result["stats"]
            total_steps += stats["env_steps"]
            total_s += stats["wall_s"]
            figures[f"{task}.s_per_episode"] = round(wall / 4, 2)
        figures["env_steps_per_s"] = round(total_steps / total_s, 1)
        figures["env_steps"] = total_steps
    torch.set_num_threads(threads)
    return figures
