"""Optimizer and learning-rate schedule of the seed recipe (spec §12.1).

AdamW(β1 0.9, β2 0.95, eps 1e-8, weight decay 1e-10) and optax's ``warmup_cosine_decay_schedule``:
linear warm-up from peak/(warmup+1) to the peak over ``warmup_steps``, cosine decay to ``end_lr`` at
``decay_steps`` (counted from step 0, warm-up included), constant ``end_lr`` afterwards.
The schedule is a pure function of the optimizer step, so a resumed run sees the same LR as an
uninterrupted one (the LambdaLR state holds only the step counter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Iterable

import torch


@dataclass(frozen=True)
class WarmupCosine:
    """LR multiplier (relative to ``peak_lr``) at optimizer step ``step``.

    A dataclass, not a lambda, so ``LambdaLR.state_dict()`` can serialise it.
    """

    peak_lr: float = 1e-4  # spec §12.1
    end_lr: float = 1e-5  # spec §12.1
    warmup_steps: int = 1_000  # spec §12.1
    decay_steps: int = 20_000  # spec §12.1: cosine reaches end_lr at step 20k (from step 0)

    def __post_init__(self) -> None:
        if self.peak_lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.peak_lr}")
        if not 0 <= self.end_lr <= self.peak_lr:
            raise ValueError(f"optim.end_lr must be in [0, optim.lr={self.peak_lr}], got {self.end_lr}")
        if self.warmup_steps < 0 or self.decay_steps < 0:
            raise ValueError(
                f"optim.warmup_steps ({self.warmup_steps}) and optim.decay_steps ({self.decay_steps}) must be >= 0"
            )
        if self.decay_steps < self.warmup_steps:
            # e.g. `experiment=embedded trainer.max_steps=50` (decay_steps follows max_steps): shorten the
            # warm-up to the run instead of refusing a short run
            object.__setattr__(self, "warmup_steps", self.decay_steps)

    def lr(self, step: int) -> float:
        if step < self.warmup_steps:
            # optax linear_schedule(init=peak/(warmup+1), end=peak, transition_steps=warmup)
            init = self.peak_lr / (self.warmup_steps + 1)
            return init + (self.peak_lr - init) * step / self.warmup_steps
        span = self.decay_steps - self.warmup_steps
        if span <= 0:
            return self.end_lr
        progress = min(step - self.warmup_steps, span) / span
        alpha = self.end_lr / self.peak_lr
        return self.peak_lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)) + alpha)

    def __call__(self, step: int) -> float:
        return self.lr(step) / self.peak_lr


def build_adamw(
    params: Iterable[torch.nn.Parameter],
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    weight_decay: float = 1e-10,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW with the openpi defaults (spec §12.1); weight decay on every parameter (no mask)."""
    return torch.optim.AdamW(
        [p for p in params if p.requires_grad],
        lr=lr,
        betas=tuple(betas),
        eps=eps,
        weight_decay=weight_decay,
        fused=fused,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: WarmupCosine) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over ``schedule``. The factor is wrapped in a plain function on purpose: LambdaLR saves a
    callable object's attributes in its state and writes them back on load, so a resumed run would
    silently keep the checkpoint's schedule (e.g. the old ``decay_steps`` when ``max_steps`` was raised)
    whatever its config says. The schedule is configuration, not training state; PolicyModule reports
    a change on resume (``schedule_change``)."""

    def factor(step: int) -> float:
        return schedule(step)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)


def schedule_change(saved: dict | None, current: WarmupCosine, step: int) -> str | None:
    """One line naming what differs between a checkpoint's schedule (``saved``: WarmupCosine fields)
    and this run's, with the LR each gives at ``step``; None when they agree or nothing was saved."""
    if not saved:
        return None
    names = [f.name for f in fields(WarmupCosine)]
    try:
        old = WarmupCosine(**{k: saved[k] for k in names})
    except (KeyError, TypeError, ValueError):
        return None
    diff = [f"{k} {getattr(old, k)} -> {getattr(current, k)}" for k in names if getattr(old, k) != getattr(current, k)]
    if not diff:
        return None
    return (f"resume at step {step}: the LR schedule differs from the checkpoint's ({', '.join(diff)}); this run "
            f"follows its config: lr {old.lr(step):.3g} -> {current.lr(step):.3g} at step {step}, "
            f"end_lr from step {current.decay_steps}")
