"""The seam between the runtime and whatever produces action chunks.

`ChunkPredictor.predict(requests) -> ChunkPrediction` is called once per step for all
environments that replan at that step. A request carries the raw observation pieces the model
needs plus the runtime's state (task, voted stage, kept actions); the prediction is the absolute
23-D chunk and, when the model has a stage head, its stage logits. Keeping the predictor at this
level lets the runtime be tested with a deterministic fake, and lets the real adapter
(`model_predictor.ModelChunkPredictor`) own every model-specific transform (spec §8.2 order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@dataclasses.dataclass(frozen=True)
class ChunkRequest:
    images: tuple[np.ndarray, np.ndarray, np.ndarray]  # head, left wrist, right wrist: (H, W, 3|4) uint8
    state: np.ndarray  # (23,) current state (spec §1.2), the reference for delta actions
    task_id: int
    stage: int  # the voted stage fed back as input (spec §6.3)
    num_stages: int  # S_task
    # (k, 23) absolute kept actions from the previous chunk (spec §9.1), or None (no inpainting).
    initial_actions: np.ndarray | None = None
    task_info: np.ndarray | None = None  # (D,) privileged task info (DESIGN §8 lever 5), if the policy uses it
    # Seed of this chunk's initial flow noise (x_1), so that a chunk does not depend on which other
    # requests share its model call; None = the process's global torch RNG.
    noise_seed: int | None = None


@dataclasses.dataclass(frozen=True)
class ChunkPrediction:
    actions: np.ndarray  # (B, H, 23) absolute actions
    stage_logits: np.ndarray | None = None  # (B, S_max) or None when the model has no stage head

    def __post_init__(self) -> None:
        a = np.asarray(self.actions)
        if a.ndim != 3 or a.shape[-1] < 23:
            raise ValueError(f"ChunkPrediction.actions must be (B, H, >=23); got shape {a.shape}")
        if self.stage_logits is not None and np.asarray(self.stage_logits).shape[0] != a.shape[0]:
            raise ValueError(
                f"stage_logits batch {np.asarray(self.stage_logits).shape[0]} != actions batch {a.shape[0]}"
            )


@runtime_checkable
class ChunkPredictor(Protocol):
    def predict(self, requests: Sequence[ChunkRequest]) -> ChunkPrediction:
        """One chunk per request, in order; one model call for the whole list where possible."""
        ...
