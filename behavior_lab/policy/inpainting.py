"""The kept actions that seed the next chunk's soft inpainting (spec §9.1).

At each replan the runtime stores the absolute 23-D actions [e, e + k) of the (corrected) chunk,
*before* compression, where e = 26 when the chunk is compressed and 20 otherwise (spec §9.1, §10).
At the next replan the predictor re-expresses them against the new state (delta, per-timestep
normalisation rows 0..k-1, pad to 32) and passes them to the sampler as `initial_actions`.
Off = nothing is kept, so every chunk is sampled without inpainting.
"""

from __future__ import annotations

import numpy as np

from behavior_lab.policy.config import InpaintingConfig


class InpaintingBuffer:
    def __init__(self, cfg: InpaintingConfig | None = None) -> None:
        self.cfg = cfg or InpaintingConfig()
        self.kept: np.ndarray | None = None  # (k, 23) absolute actions, or None

    def reset(self) -> None:
        """Episode start or task change: the next chunk has no inpainting (spec §9.4, §13.4)."""
        self.kept = None

    def store(self, actions: np.ndarray, executed: int) -> None:
        """Keep actions[executed : executed + k] of the absolute chunk (spec §9.1)."""
        if not self.cfg.enabled:
            self.kept = None
            return
        end = executed + self.cfg.actions_to_keep
        a = np.asarray(actions)
        # The seed keeps nothing when the chunk is too short (eval_b1k_wrapper.act).
        self.kept = a[executed:end].astype(np.float32, copy=True) if a.shape[0] >= end else None

    def take(self) -> np.ndarray | None:
        """The kept actions for the replan now happening (they stay until overwritten by `store`)."""
        return self.kept
