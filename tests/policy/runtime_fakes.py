"""Deterministic fakes for the policy runtime tests: observations and a scripted ChunkPredictor."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


from behavior_lab.data import schema
from behavior_lab.policy.predictor import ChunkPrediction, ChunkRequest


def make_proprio(arm_left=0.1, arm_right=-0.1, left_width=0.1, right_width=0.1, base_vel=(0.0, 0.0, 0.0)):
    """A 256-D proprio vector whose 23-D state is easy to predict (spec §1.2 index map)."""
    p = np.zeros(schema.PROPRIO_DIM, dtype=np.float32)
    I = schema.PROPRIO_INDICES
    p[I["base_qvel"]] = base_vel
    p[I["trunk_qpos"]] = [0.5, 0.6, 0.7, 0.8]
    p[I["arm_left_qpos"]] = arm_left
    p[I["arm_right_qpos"]] = arm_right
    p[I["gripper_left_qpos"]] = left_width / 2
    p[I["gripper_right_qpos"]] = right_width / 2
    return p


def make_obs(task=1, image_hw=(8, 8), channels=4, **proprio_kw):
    h, w = image_hw
    rng = np.random.default_rng(0)
    obs = {
        schema.PROPRIO_KEY: make_proprio(**proprio_kw),
        schema.TASK_ID_KEY: np.array([task], dtype=np.int64),
        schema.CAM_REL_POSES_KEY: np.zeros(21, np.float32),
    }
    for k in schema.OBS_RGB_KEYS:
        obs[k] = rng.integers(0, 255, size=(h, w, channels), dtype=np.uint8)
    return obs


class ScriptedPredictor:
    """chunk_fn(request, call_index, row) -> (30, 23); logits_fn(request, call_index) -> (15,) or None."""

    def __init__(self, chunk_fn: Callable | None = None, logits_fn: Callable | None = None, horizon: int = 30):
        self.chunk_fn = chunk_fn or (lambda req, call, row: np.tile(req.state, (horizon, 1)))
        self.logits_fn = logits_fn
        self.calls: list[list[ChunkRequest]] = []

    def predict(self, requests: Sequence[ChunkRequest]) -> ChunkPrediction:
        call = len(self.calls)
        self.calls.append(list(requests))
        actions = np.stack([self.chunk_fn(r, call, j) for j, r in enumerate(requests)]).astype(np.float32)
        logits = None
        if self.logits_fn is not None:
            logits = np.stack([self.logits_fn(r, call) for r in requests])
        return ChunkPrediction(actions=actions, stage_logits=logits)


def one_hot_logits(stage: int, size: int = schema.MAX_NUM_STAGES) -> np.ndarray:
    out = np.full(size, -5.0, dtype=np.float32)
    out[stage] = 5.0
    return out


