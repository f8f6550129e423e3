"""The planner: cells x seeds x tasks -> deduplicated units of work.

Each cell is split into its training part and its inference part (design.Cell.part). Cells that
agree on the training part share one training per seed; every checkpoint is then evaluated under
each inference part that some cell pairs with it, once per task. The full grid over four training
toggles and two inference toggles is 64 cells -> 16 trainings per seed -> 64 evaluations per seed
and task.

Paths (dataset root, run folders, checkpoint) are not part of any unit id: the driver adds them
at run time, so moving an `out` folder or sharing a ledger across machines keeps the ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from behavior_lab.sweep.design import Cell, Registry
from behavior_lab.sweep.units import Unit, dedupe, format_override_value


@dataclass(frozen=True)
class PlanSettings:
    """Everything besides the cells that decides what runs (budgets, tasks, seeds, data)."""

    tasks: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    episodes_per_task: int = 10
    train_overrides: tuple[str, ...] = ()  # budget + extra overrides for every training
    eval_overrides: tuple[str, ...] = ()  # extra overrides for every evaluation
    data_root: str | None = None  # an existing dataset; None = generate one (a `data` unit)
    data_episodes_per_task: int = 20
    data_seed: int = 0
    data_overrides: tuple[str, ...] = ()  # `behavior-lab demos` overrides
    stats_overrides: tuple[str, ...] = ()  # `behavior-lab stats` overrides
    train_seed_key: str | None = "seed"
    eval_seed_key: str | None = "seed"
    train_tasks_key: str | None = None  # e.g. "data.tasks": restrict training to the sweep's tasks

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks is empty; give the task subset, e.g. tasks=[turning_on_radio]")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks lists a task twice: {list(self.tasks)}")
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed, e.g. seeds=[0]")
        if self.episodes_per_task < 1:
            raise ValueError(f"eval.episodes_per_task={self.episodes_per_task} must be >= 1")


@dataclass(frozen=True)
class Member:
    """One (cell, seed) that an eval unit's result belongs to."""

    cell: Cell
    seed: int


@dataclass
class Plan:
    cells: list[Cell]
    settings: PlanSettings
    data: Unit | None
    trains: list[Unit]
    evals: list[Unit]
    members: dict[str, list[Member]] = field(default_factory=dict)  # eval unit id -> cells it serves
    _by_train: dict[str | None, list[Unit]] | None = field(default=None, repr=False)

    @property
    def units(self) -> list[Unit]:
        return ([self.data] if self.data else []) + self.trains + self.evals

    def evals_of(self, train_id: str) -> list[Unit]:
        if self._by_train is None:
            self._by_train = {}
            for u in self.evals:
                self._by_train.setdefault(u.depends_on, []).append(u)
        return list(self._by_train.get(train_id, []))

    def summary(self) -> dict[str, int]:
        return {
            "cells": len(self.cells),
            "seeds": len(self.settings.seeds),
            "tasks": len(self.settings.tasks),
            "trainings": len(self.trains),
            "evaluations": len(self.evals),
        }


def data_unit(s: PlanSettings) -> Unit | None:
    if s.data_root is not None:
        return None
    from importlib.metadata import version

    from behavior_lab.sim import SUITE_VERSION

    desc = {
        "suite": SUITE_VERSION,  # new demonstrations when the embedded suite changes
        "mujoco": version("mujoco"),  # ... or the physics engine does
        "tasks": sorted(s.tasks),
        "episodes_per_task": s.data_episodes_per_task,
        "seed": s.data_seed,
        "overrides": list(s.data_overrides),
        "stats_overrides": list(s.stats_overrides),
    }
    return Unit("data", desc, overrides=tuple(s.data_overrides), seed=s.data_seed)


def plan(cells: Sequence[Cell], registry: Registry, settings: PlanSettings) -> Plan:
    """Units for `cells`: one training per (training part, seed), one eval per (training, inference part, task)."""
    if not cells:
        raise ValueError("the sweep design produced no cells")
    data = data_unit(settings)
    data_ref: Mapping[str, Any] = {"unit": data.id} if data else {"root": settings.data_root}
    trains: list[Unit] = []
    evals: list[Unit] = []
    members: dict[str, list[Member]] = {}
    for seed in settings.seeds:
        for cell in cells:
            train = _train_unit(cell, seed, registry, settings, data_ref, data)
            trains.append(train)
            for task in settings.tasks:
                ev = _eval_unit(cell, seed, task, train, registry, settings)
                evals.append(ev)
                members.setdefault(ev.id, []).append(Member(cell, seed))
    return Plan(list(cells), settings, data, dedupe(trains), dedupe(evals), members)


def _train_unit(
    cell: Cell, seed: int, registry: Registry, s: PlanSettings, data_ref: Mapping, data: Unit | None
) -> Unit:
    overrides = cell.overrides(registry, "train") + list(s.train_overrides)
    if s.train_seed_key:
        overrides.append(f"{s.train_seed_key}={seed}")
    tasks_part: dict[str, Any] = {}
    if s.train_tasks_key:
        overrides.append(f"{s.train_tasks_key}={format_override_value(list(s.tasks))}")
        tasks_part = {"tasks": sorted(s.tasks)}
    desc = {
        "train": cell.part(registry, "train"),
        "seed": seed,
        "overrides": list(s.train_overrides),
        "data": dict(data_ref),
        **tasks_part,
    }
    return Unit("train", desc, overrides=tuple(overrides), depends_on=data.id if data else None, seed=seed)


def _eval_unit(cell: Cell, seed: int, task: str, train: Unit, registry: Registry, s: PlanSettings) -> Unit:
    overrides = cell.overrides(registry, "inference") + list(s.eval_overrides)
    if s.eval_seed_key:
        overrides.append(f"{s.eval_seed_key}={seed}")
    desc = {
        "train_unit": train.id,
        "inference": cell.part(registry, "inference"),
        "task": task,
        "seed": seed,
        "episodes_per_task": s.episodes_per_task,
        "overrides": list(s.eval_overrides),
    }
    return Unit("eval", desc, overrides=tuple(overrides), depends_on=train.id, task=task, seed=seed)
