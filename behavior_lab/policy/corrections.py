"""Gripper correction rules (spec §11), ported from the seed's `correction_rules.py`.

Rules run on the absolute 23-D chunk *before* the compression decision, task-specific first
(the radio rule, §11.2), then the general gripper rule (§11.1); the first rule that fires wins.
A triggered rule replaces the whole chunk with the current 23-D state repeated over the horizon
and opens the offending gripper(s) (which also puts the current base *velocity* into dims 0-2,
a seed quirk kept on purpose, spec §11.1 / §14).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from behavior_lab.data import schema
from behavior_lab.policy.config import CorrectionsConfig

# spec §11.2: the radio rule exists for task 0 ("turning_on_radio") only.
RADIO_TASK_ID = 0
RADIO_MIN_STAGE = 2  # the rule applies from stage 2 on
RADIO_LAST_STAGE = 4  # stage 4 (the last of 5) is forced back to ...
RADIO_RESET_STAGE = 2  # ... stage 2


@dataclasses.dataclass(frozen=True)
class Correction:
    actions: np.ndarray  # (H, 23) the chunk to use
    stage: int  # the stage to use from now on
    rule: str | None  # name of the rule that fired, None if none did


class GripperCorrector:
    """`apply(task_id, stage, state, actions) -> Correction`; identity when disabled."""

    def __init__(self, cfg: CorrectionsConfig | None = None) -> None:
        self.cfg = cfg or CorrectionsConfig()
        self._open_left = frozenset(self.cfg.always_open_left)
        self._open_right = frozenset(self.cfg.always_open_right)
        self._right_never = frozenset(self.cfg.right_never_corrected)

    def closed(self, g: float) -> bool:
        return g < self.cfg.closed_threshold  # spec §11: closed = g < -0.98

    def open(self, g: float) -> bool:
        return g > self.cfg.open_threshold  # spec §11: open = g > 0.90

    def apply(self, task_id: int, stage: int, state: np.ndarray, actions: np.ndarray) -> Correction:
        if self.cfg.enabled:
            rules = []
            if self.cfg.radio_rule and task_id == RADIO_TASK_ID:
                rules.append(("radio", self.radio_rule))
            if self.cfg.general_rule:
                rules.append(("general_gripper", self.general_rule))
            for name, rule in rules:
                result = rule(task_id, stage, state, actions)
                if result is not None:
                    return Correction(result[0], result[1], name)
        return Correction(actions, stage, None)

    def _hold_state(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        # spec §11.1: the current 23-D state repeated over the horizon.
        return np.tile(np.asarray(state, dtype=np.float64)[: schema.ACTION_DIM], (actions.shape[0], 1))

    def radio_rule(self, task_id: int, stage: int, state: np.ndarray, actions: np.ndarray):
        """spec §11.2 (`task0_stage4_reset_to_stage2`); None when it does not fire."""
        if task_id != RADIO_TASK_ID or stage < RADIO_MIN_STAGE:
            return None
        new_stage = RADIO_RESET_STAGE if stage == RADIO_LAST_STAGE else stage
        left, right = float(state[schema.LEFT_GRIPPER_DIM]), float(state[schema.RIGHT_GRIPPER_DIM])
        left_closed, right_closed = self.closed(left), self.closed(right)
        left_middle = not (self.open(left) or left_closed)
        right_middle = not (self.open(right) or right_closed)
        out = self._hold_state(state, actions)
        changed = False
        if left_closed and not right_middle:
            out[:, schema.LEFT_GRIPPER_DIM] = self.cfg.open_value
            changed = True
        if right_closed and not left_middle:
            out[:, schema.RIGHT_GRIPPER_DIM] = self.cfg.open_value
            changed = True
        if not changed:
            if new_stage == stage:
                return None  # fall through to the general rule
            return actions, new_stage  # only the stage changed: original actions, stage 2
        return out, new_stage

    def general_rule(self, task_id: int, stage: int, state: np.ndarray, actions: np.ndarray):
        """spec §11.1 (`general_gripper_correction`); None when no gripper needs opening."""
        min_stage = self.cfg.min_stage_for_closure.get(task_id, {})
        left_fix = False
        if self.closed(float(state[schema.LEFT_GRIPPER_DIM])):
            # The always-open sets take precedence over the stage table (spec §11.1).
            if task_id in self._open_left:
                left_fix = True
            elif "left" in min_stage and stage < min_stage["left"]:
                left_fix = True
        right_fix = False
        if self.closed(float(state[schema.RIGHT_GRIPPER_DIM])) and task_id not in self._right_never:
            if task_id in self._open_right:
                right_fix = True
            elif "right" in min_stage and stage < min_stage["right"]:
                right_fix = True
        if not (left_fix or right_fix):
            return None
        out = self._hold_state(state, actions)
        if left_fix:
            out[:, schema.LEFT_GRIPPER_DIM] = self.cfg.open_value
        if right_fix:
            out[:, schema.RIGHT_GRIPPER_DIM] = self.cfg.open_value
        return out, stage  # spec §11.1: the stage is unchanged
