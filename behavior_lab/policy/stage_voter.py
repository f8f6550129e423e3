"""Stage tracking at inference: the seed's voting and jump filter (spec §6.4).

Ported from `B1KPolicyWrapper.update_current_stage` (spec §6.4). One `StageVoter` per
environment; it holds the current stage and a FIFO of the last `history_len` predictions.
The update runs after the replan's actions were produced with the *old* stage.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from behavior_lab.policy.config import VotingConfig


class StageVoter:
    """Current stage of one episode, updated from the model's stage logits once per replan."""

    def __init__(self, cfg: VotingConfig | None = None) -> None:
        self.cfg = cfg or VotingConfig()
        self.current_stage = self.cfg.fixed_stage if self.cfg.mode == "fixed" else 0
        self.history: deque[int] = deque(maxlen=self.cfg.history_len)

    def reset(self) -> None:
        """Episode start or task change: stage 0, empty history (spec §6.4, §13.4)."""
        self.current_stage = self.cfg.fixed_stage if self.cfg.mode == "fixed" else 0
        self.history.clear()

    def set_stage(self, stage: int) -> None:
        """A correction rule overwrote the stage (spec §11.2): take it and clear the history."""
        self.current_stage = int(stage)
        self.history.clear()

    def observe_oracle(self, stage: int, num_stages: int) -> None:
        """mode="oracle": the environment tells the stage (spec §15 item 3)."""
        if self.cfg.enabled and self.cfg.mode == "oracle":
            self.current_stage = int(np.clip(stage, 0, num_stages - 1))

    def update(self, logits: np.ndarray | None, num_stages: int) -> int:
        """Feed one replan's stage logits; returns the (possibly new) current stage."""
        if not self.cfg.enabled or logits is None or self.cfg.mode in ("fixed", "oracle"):
            return self.current_stage
        max_stage = num_stages - 1
        # spec §6.4 step 1: argmax, clipped to <= S_task - 1.
        predicted = min(int(np.argmax(np.asarray(logits))), max_stage)
        if self.cfg.mode == "argmax":
            self.current_stage = predicted
            return self.current_stage
        self.history.append(predicted)
        if len(self.history) < self.cfg.history_len:
            return self.current_stage
        current = self.current_stage
        nxt = current + 1
        # spec §6.4 step 2: nothing happens once the last stage is reached (not even going back).
        if nxt > max_stage:
            return current
        votes_next = sum(p == nxt for p in self.history)
        votes_skip = sum(p == nxt + 1 for p in self.history)
        votes_back = sum(p == current - 1 for p in self.history)
        if votes_next >= self.cfg.votes_to_promote:
            self._move(nxt)
        elif self.cfg.allow_skip and votes_skip == self.cfg.history_len:
            self._move(nxt)  # spec §6.4: the "skip" case still advances by only one
        elif self.cfg.allow_back and votes_back == self.cfg.history_len and current > 0:
            self._move(current - 1)
        return self.current_stage

    def _move(self, stage: int) -> None:
        self.current_stage = stage
        self.history.clear()
