"""Optuna search over continuous hyperparameters (sweep.mode=search).

Each search trial proposes values for `sweep.search.params` (e.g. the correlation beta, the number
of flow samples, the inpainting time threshold), forms one cell from them plus `sweep.fixed`, and
runs that cell's units through the ordinary planner/ledger/driver, so its trainings and evaluations
are deduplicated and crash-safe like any grid cell. The objective is the mean task q-score over the
task subset and the seeds (missing episodes = 0), maximised with TPE.

The search study lives next to the ledger (same storage, study `search-<ablation>`) and persists:
rerunning the same command continues until `n_trials` trials are COMPLETE. A search trial left
RUNNING by a crash is set FAIL and its parameters are enqueued again, so the next trial revisits
the same point and reuses whatever of its units had already finished.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from behavior_lab.sweep.design import Cell, Registry
from behavior_lab.sweep.driver import SweepDriver
from behavior_lab.sweep.ledger import Heartbeat, Ledger, process_identity
from behavior_lab.sweep.planner import Plan, PlanSettings, plan
from behavior_lab.sweep.progress import Silent
from behavior_lab.sweep.results import mean_score, records
from behavior_lab.sweep.stages import StageRunner

MAX_CONSECUTIVE_FAILURES = 3


@dataclass(frozen=True)
class SearchSettings:
    params: Mapping[str, BaseDistribution]
    n_trials: int = 20
    seed: int = 0
    study: str = "search"
    startup_trials: int = 5


def distribution(key: str, node: Mapping[str, Any]) -> BaseDistribution:
    """`{type: float|int|categorical, low, high, log, step, choices}` -> an Optuna distribution."""
    kind = str(node.get("type", "float"))
    try:
        if kind == "float":
            return FloatDistribution(
                float(node["low"]),
                float(node["high"]),
                log=bool(node.get("log", False)),
                step=None if node.get("step") is None else float(node["step"]),
            )
        if kind == "int":
            return IntDistribution(
                int(node["low"]), int(node["high"]), log=bool(node.get("log", False)), step=int(node.get("step") or 1)
            )
        if kind == "categorical":
            return CategoricalDistribution(list(node["choices"]))
    except KeyError as e:
        raise KeyError(f"sweep.search.params.{key} lacks key {e.args[0]!r}") from None
    raise ValueError(f"sweep.search.params.{key}.type={kind!r}; valid types: float, int, categorical")


def search_settings(node: Mapping[str, Any], ablation: str) -> SearchSettings:
    params = {str(k): distribution(str(k), v) for k, v in (node.get("params") or {}).items()}
    if not params:
        raise ValueError(
            "sweep.mode=search needs sweep.search.params, e.g. "
            "{innovation.correlated_noise.beta: {type: float, low: 0.0, high: 1.0}}"
        )
    return SearchSettings(
        params,
        int(node.get("n_trials", 20)),
        int(node.get("seed", 0)),
        str(node.get("study") or f"search-{ablation}"),
        int(node.get("startup_trials", 5)),
    )


@dataclass
class SearchOutcome:
    completed: int = 0
    ran: int = 0
    failed: list[str] = field(default_factory=list)
    best: dict[str, Any] | None = None
    plans: list[Plan] = field(default_factory=list)  # one per COMPLETE search trial (for the report)


def cell_for(number: int, params: Mapping[str, Any], fixed: Mapping[str, Any], registry: Registry) -> Cell:
    toggles = {k: bool(v) for k, v in fixed.items() if k in registry.toggles}
    fixed_params = {k: v for k, v in fixed.items() if k not in registry.toggles}
    return Cell(f"trial-{number:03d}", toggles, {**fixed_params, **dict(params)})


class Search:
    def __init__(
        self,
        settings: SearchSettings,
        registry: Registry,
        fixed: Mapping[str, Any],
        plan_settings: PlanSettings,
        ledger: Ledger,
        runner: StageRunner,
        out: Path,
        progress: Silent | None = None,
    ):
        self.s, self.registry, self.fixed = settings, registry, dict(fixed)
        self.plan_settings, self.ledger, self.runner, self.out = plan_settings, ledger, runner, Path(out)
        self.progress = progress or Silent()
        # Same storage as the ledger; its own study, so TPE sees only search trials.
        self.trials_ledger = Ledger(ledger.url, settings.study, ledger.heartbeat_s, ledger.grace_s)
        sampler = optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=settings.startup_trials)
        self.study = optuna.load_study(study_name=settings.study, storage=self.trials_ledger.storage, sampler=sampler)

    def _recover(self) -> None:
        """Fail search trials whose process died and enqueue their parameters again."""
        for number in self.trials_ledger.fail_stale():
            trial = self.study.trials[number]
            if trial.params:
                self.study.enqueue_trial(trial.params, user_attrs={"retry_of": number}, skip_if_exists=False)

    def plan_for(self, number: int, params: Mapping[str, Any]) -> Plan:
        return plan([cell_for(number, params, self.fixed, self.registry)], self.registry, self.plan_settings)

    def run(self) -> SearchOutcome:
        out = SearchOutcome()
        self._recover()
        failures = 0
        while self._completed() < self.s.n_trials:
            with warnings.catch_warnings():  # we record heartbeats ourselves (ledger.Heartbeat)
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                trial = self.study.ask(dict(self.s.params))
            trial.set_user_attr("claim", process_identity())
            p = self.plan_for(trial.number, trial.params)
            driver = SweepDriver(
                p,
                self.ledger,
                self.runner,
                self.out,
                self.progress,
                attrs={"search_study": self.s.study, "search_trial": trial.number},
            )
            with Heartbeat(self.trials_ledger.storage, trial._trial_id, self.ledger.heartbeat_s):
                try:
                    result = driver.run()
                except BaseException:
                    self.study.tell(trial, state=TrialState.FAIL)
                    raise
            out.ran += 1
            if not result.ok:
                self.study.tell(trial, state=TrialState.FAIL)
                out.failed += result.failed or [f"trial {trial.number}: {result.blocked} units blocked"]
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    break
                continue
            failures = 0
            s = self.plan_settings
            value = mean_score(records(p, driver.states), s.tasks, s.episodes_per_task)
            trial.set_user_attr("cell", p.cells[0].name)
            self.study.tell(trial, value)
        out.completed = self._completed()
        out.plans = self.completed_plans()
        if out.completed:
            best = self.study.best_trial
            out.best = {"trial": best.number, "value": best.value, "params": best.params}
        return out

    def _completed(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def completed_plans(self) -> list[Plan]:
        return [
            self.plan_for(t.number, t.params)
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        ]
