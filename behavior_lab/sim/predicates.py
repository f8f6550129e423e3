"""BDDL-style goal predicates, their evaluation on a MuJoCo state, and BEHAVIOR's episode q-score.

A goal is a list of *options*; each option is a list of (possibly negated) predicates. The task is
done when every predicate of some option holds. The episode q-score is BEHAVIOR's
(facts §3.2, OmniGibson ``task_metric.py``): 1 on success, else the max over options of
#(predicates false at the start and true at the end) / |option|.

Predicates read the world through ``WorldView`` (site positions, region boxes, joint values,
toggle latches, grasp state), so they can be tested on hand-built situations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np


class WorldView(Protocol):
    """What predicates may ask about the world."""

    def body_pos(self, body: str) -> np.ndarray: ...

    def in_region(self, point: np.ndarray, site: str) -> bool: ...

    def is_grasped(self, body: str) -> bool: ...

    def is_open(self, articulated: str) -> bool: ...

    def is_toggled_on(self, body: str) -> bool: ...


def _on_top(w: WorldView, obj: str, surface: str) -> bool:
    return (not w.is_grasped(obj)) and w.in_region(w.body_pos(obj), f"{surface}_top")


def _inside(w: WorldView, obj: str, container: str) -> bool:
    return (not w.is_grasped(obj)) and w.in_region(w.body_pos(obj), f"{container}_inside")


def _open(w: WorldView, articulated: str) -> bool:
    return w.is_open(articulated)


def _toggled_on(w: WorldView, obj: str) -> bool:
    return w.is_toggled_on(obj)


PREDICATES: dict[str, Callable[..., bool]] = {
    "on_top": _on_top,
    "inside": _inside,
    "open": _open,
    "toggled_on": _toggled_on,
}


@dataclass(frozen=True)
class Predicate:
    """One grounded BDDL atom, e.g. ``Predicate("inside", ("can_1", "trash_can"))``."""

    kind: str
    args: tuple[str, ...]
    negate: bool = False

    def __post_init__(self):
        if self.kind not in PREDICATES:
            raise KeyError(f"unknown predicate {self.kind!r}; known: {sorted(PREDICATES)}")

    @property
    def name(self) -> str:
        atom = f"{self.kind}({','.join(self.args)})"
        return f"not {atom}" if self.negate else atom

    def evaluate(self, world: WorldView) -> bool:
        value = bool(PREDICATES[self.kind](world, *self.args))
        return value != self.negate


def P(kind: str, *args: str) -> Predicate:
    return Predicate(kind, tuple(args))


def Not(p: Predicate) -> Predicate:
    return Predicate(p.kind, p.args, not p.negate)


GoalOptions = Sequence[Sequence[Predicate]]


def all_predicates(options: GoalOptions) -> list[Predicate]:
    seen: dict[str, Predicate] = {}
    for option in options:
        for p in option:
            seen.setdefault(p.name, p)
    return list(seen.values())


def evaluate(options: GoalOptions, world: WorldView) -> dict[str, bool]:
    """{predicate name: value} for every distinct predicate in the goal."""
    return {p.name: p.evaluate(world) for p in all_predicates(options)}


def is_success(options: GoalOptions, values: dict[str, bool]) -> bool:
    return any(all(values[p.name] for p in option) for option in options)


def q_score(options: GoalOptions, start: dict[str, bool], end: dict[str, bool]) -> float:
    """BEHAVIOR episode q-score (facts §3.2): predicates true at start count in the denominator only."""
    if is_success(options, end):
        return 1.0
    best = 0.0
    for option in options:
        gained = sum(1 for p in option if (not start[p.name]) and end[p.name])
        best = max(best, gained / len(option))
    return best
