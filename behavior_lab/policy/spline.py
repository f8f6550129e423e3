"""Cubic-spline speed-up and its gripper-variation gate (spec §10).

`SplineCompressor` turns the first `actions_to_execute` (26) actions of a chunk into
`execute_in_n_steps` (20) steps and scales the base velocities by 26/20; `GripperVariationGate`
turns compression off for chunks where a gripper moves more than 0.2 in the executed part.
Ported from `B1KPolicyWrapper._interpolate_actions` and `correction_rules.check_gripper_variation`.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import make_interp_spline

from behavior_lab.data import schema
from behavior_lab.policy.config import GateConfig, SplineConfig


class GripperVariationGate:
    """True when compression may be applied to this chunk (spec §10 step 1)."""

    def __init__(self, cfg: GateConfig | None = None, num_actions: int = 26) -> None:
        self.cfg = cfg or GateConfig()
        self.num_actions = num_actions

    def variation(self, actions: np.ndarray) -> tuple[float, float]:
        """(left, right) gripper range max - min over the first `num_actions` actions."""
        head = np.asarray(actions)[: self.num_actions]
        left = head[:, schema.LEFT_GRIPPER_DIM]
        right = head[:, schema.RIGHT_GRIPPER_DIM]
        return float(left.max() - left.min()), float(right.max() - right.min())

    def allows_compression(self, actions: np.ndarray) -> bool:
        if not self.cfg.enabled:
            return True
        left, right = self.variation(actions)
        # spec §10: r_L > 0.2 or r_R > 0.2 disables compression (strict inequality).
        return not (left > self.cfg.threshold or right > self.cfg.threshold)


class SplineCompressor:
    """Resample `actions_to_execute` actions into `execute_in_n_steps` steps (spec §10 step 2)."""

    def __init__(self, cfg: SplineConfig | None = None, execute_in_n_steps: int = 20) -> None:
        self.cfg = cfg or SplineConfig()
        self.execute_in_n_steps = execute_in_n_steps

    @property
    def active(self) -> bool:
        """The seed compresses only when fewer steps than actions are played (spec §10)."""
        return self.cfg.enabled and self.execute_in_n_steps < self.cfg.actions_to_execute

    @property
    def speed_factor(self) -> float:
        return self.cfg.actions_to_execute / self.execute_in_n_steps  # spec §10: 26/20 = 1.3

    def compress(self, actions: np.ndarray) -> np.ndarray:
        """(>= actions_to_execute, D) absolute actions -> (execute_in_n_steps, D) float64."""
        n = self.cfg.actions_to_execute
        a = np.asarray(actions, dtype=np.float64)[:n]
        if a.shape[0] != n:
            raise ValueError(f"spline compression needs {n} actions, got a chunk of {a.shape[0]}")
        src = np.arange(n, dtype=np.float64)  # spec §10: knots k = 0..25
        dst = np.linspace(0.0, n - 1, self.execute_in_n_steps)  # spec §10: linspace(0, 25, 20)
        # interp1d(kind="cubic") is make_interp_spline(k=3) with not-a-knot ends; one call for all dims.
        k = 3 if self.cfg.kind == "cubic" else 1
        out = make_interp_spline(src, a, k=k, axis=0)(dst)
        if self.cfg.velocity_rescale:
            # spec §10: faster playback needs proportionally higher commanded base velocity.
            out[:, list(schema.BASE_VEL_DIMS)] *= self.speed_factor
        return out
