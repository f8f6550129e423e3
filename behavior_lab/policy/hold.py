"""`HoldPositionPredictor`: a model-free ChunkPredictor that keeps the robot where it is.

Every chunk is the current 23-D state repeated over the horizon with the base velocity set to 0
(the R1Pro's joints are position-controlled, so this holds the pose). It plays the role of
OmniGibson's `LocalPolicy` for protocol checks (`behavior-lab serve ckpt=hold`), and it is what
the serving benchmark uses to measure server overhead without a model call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from behavior_lab.data import schema
from behavior_lab.policy.predictor import ChunkPrediction, ChunkRequest


class HoldPositionPredictor:
    def __init__(self, horizon: int = schema.ACTION_HORIZON) -> None:
        self.horizon = horizon
        self.calls = 0

    def predict(self, requests: Sequence[ChunkRequest]) -> ChunkPrediction:
        self.calls += 1
        states = np.stack([np.asarray(r.state, dtype=np.float32) for r in requests])  # (B, 23)
        actions = np.repeat(states[:, None, :], self.horizon, axis=1)  # (B, H, 23)
        actions[:, :, list(schema.BASE_VEL_DIMS)] = 0.0
        return ChunkPrediction(actions=actions, stage_logits=None)
