"""Small synthetic BEHAVIOR-layout datasets for tests and benchmarks (no simulator needed).

Trajectories are smooth random walks in the 23-D action layout; the 256-D proprio follows the
action with a one-step lag (so chunk-start deltas are small and correlated, like real data), and
each camera shows a colour gradient with a moving square (so videos compress and decode like video).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from behavior_lab.data import schema
from behavior_lab.data.writer import DatasetWriter


def synthetic_episode(length: int, image_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One episode's frames dict in the writer's format."""
    t = length
    steps = rng.normal(0.0, 0.02, size=(t, schema.ACTION_DIM)).astype(np.float32)
    action = np.cumsum(steps, axis=0) + rng.normal(0, 0.3, size=(1, schema.ACTION_DIM)).astype(np.float32)
    action[:, schema.BASE_VEL_DIMS] = np.sin(np.linspace(0, 3, t))[:, None] * rng.uniform(0.1, 0.5, 3)
    for g in (schema.LEFT_GRIPPER_DIM, schema.RIGHT_GRIPPER_DIM):
        action[:, g] = np.where(np.arange(t) < t // 2, 1.0, -1.0)
    prev = np.concatenate([action[:1], action[:-1]], axis=0)  # state lags the command by one step
    proprio = rng.normal(0, 0.1, size=(t, schema.PROPRIO_DIM)).astype(np.float32)
    idx = schema.PROPRIO_INDICES
    proprio[:, idx["base_qvel"]] = prev[:, 0:3]
    proprio[:, idx["trunk_qpos"]] = prev[:, 3:7]
    proprio[:, idx["arm_left_qpos"]] = prev[:, 7:14]
    proprio[:, idx["arm_right_qpos"]] = prev[:, 15:22]
    # finger qpos so that 2·(sum/0.1) − 1 reproduces the gripper command (spec §1.2)
    proprio[:, idx["gripper_left_qpos"]] = ((prev[:, 14:15] + 1) / 2 * schema.GRIPPER_MAX_WIDTH / 2).repeat(2, 1)
    proprio[:, idx["gripper_right_qpos"]] = ((prev[:, 22:23] + 1) / 2 * schema.GRIPPER_MAX_WIDTH / 2).repeat(2, 1)
    proprio[:, idx["robot_pos"]] = np.cumsum(prev[:, 0:3] / 30.0, axis=0)
    frames: dict[str, np.ndarray] = {
        schema.DATASET_STATE_KEY: proprio,
        schema.DATASET_CAM_REL_POSES_KEY: rng.normal(0, 1, size=(t, schema.CAM_REL_POSES_DIM)).astype(np.float32),
        schema.DATASET_ACTION_KEY: action.astype(np.float32),
    }
    s = image_size
    grad = np.linspace(0, 255, s, dtype=np.float32)
    for c, key in enumerate(schema.DATASET_RGB_KEYS):
        video = np.empty((t, s, s, 3), dtype=np.uint8)
        video[..., 0] = grad[None, None, :]
        video[..., 1] = grad[None, :, None]
        video[..., 2] = 60 * c
        side = max(2, s // 4)
        for i in range(t):
            x = int((i * 2 + 7 * c) % (s - side))
            video[i, side : 2 * side, x : x + side] = (255, 255, 255)
        frames[key] = video
    return frames


def make_synthetic_dataset(
    root: str | os.PathLike,
    tasks: Sequence[int | str] = (0, 1),
    episodes_per_task: int = 2,
    length: int | Sequence[int] = 40,
    image_size: int = 32,
    codec: str = "libx264",
    seed: int = 0,
    annotations: bool = True,
) -> Path:
    """Write a complete dataset; `length` may be one int or one per episode (in write order)."""
    rng = np.random.default_rng(seed)
    n = len(tasks) * episodes_per_task
    lengths = [int(length)] * n if isinstance(length, (int, np.integer)) else [int(x) for x in length]
    if len(lengths) != n:
        raise ValueError(f"got {len(lengths)} lengths for {n} episodes")
    writer = DatasetWriter(root, codec=codec)
    k = 0
    for task in tasks:
        for _ in range(episodes_per_task):
            ann = {"task_name": schema.task_name(schema.task_id(task)), "skill_annotation": []} if annotations else None
            writer.add_episode(task, synthetic_episode(lengths[k], image_size, rng), annotations=ann)
            k += 1
    return writer.finalize()
