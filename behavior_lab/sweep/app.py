"""`behavior-lab sweep`: config -> design -> plan -> (launch) -> ledger -> report.

Entry point `run_sweep(cfg, task_overrides)`; the CLI wrapper (behavior_lab/cli/sweep.py) only
passes the composed config and the command line's overrides (needed to start a multirun).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from behavior_lab.sweep.design import Registry, design_from_cfg
from behavior_lab.sweep.driver import Outcome, SweepDriver
from behavior_lab.sweep.launch import (
    GpuSlot,
    check_launcher,
    local_job_argv,
    multirun_argv,
    resolve_gpus,
    resolve_jobs,
    run_multirun,
    thread_env,
    worker_ids,
)
from behavior_lab.sweep.ledger import Ledger, default_storage
from behavior_lab.sweep.planner import Plan, PlanSettings, plan
from behavior_lab.sweep.progress import Silent, SweepProgress
from behavior_lab.sweep.results import records, write_results_tree
from behavior_lab.sweep.search import Search, search_settings
from behavior_lab.sweep.stages import StageRunner, bind_to_parent
from behavior_lab.sweep.units import format_override_value


@dataclass
class SweepSummary:
    ablation: str
    out: Path
    plan: dict[str, int] = field(default_factory=dict)
    ran: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    pending: int = 0
    report: Path | None = None
    results: Path | None = None
    best: dict | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ablation": self.ablation,
            "out": str(self.out),
            "plan": self.plan,
            "ran": self.ran,
            "failed": self.failed,
            "pending": self.pending,
            "best": self.best,
            "report": None if self.report is None else str(self.report),
            "results": None if self.results is None else str(self.results),
        }


def registry_from_cfg(cfg: Mapping[str, Any]) -> Registry:
    return Registry.from_dict(cfg.get("toggles") or {}, cfg.get("inference_prefixes") or ())


def plan_settings(cfg: Mapping[str, Any]) -> PlanSettings:
    data, train, ev = cfg.get("data") or {}, cfg.get("train") or {}, cfg.get("eval") or {}
    root = data.get("root")
    return PlanSettings(
        tasks=tuple(str(t) for t in cfg.get("tasks") or ()),
        seeds=tuple(int(s) for s in cfg.get("seeds") or ()),
        episodes_per_task=int(ev.get("episodes_per_task", 10)),
        train_overrides=tuple(_train_budget(train) + [str(o) for o in train.get("overrides") or []]),
        eval_overrides=tuple(str(o) for o in ev.get("overrides") or ()),
        data_root=None if root is None else str(Path(root).resolve()),
        data_episodes_per_task=int(data.get("episodes_per_task", 20)),
        data_seed=int(data.get("seed", 0)),
        data_overrides=tuple(str(o) for o in data.get("demos_overrides") or ()),
        stats_overrides=tuple(str(o) for o in data.get("stats_overrides") or ()),
        train_seed_key=train.get("seed_key"),
        eval_seed_key=ev.get("seed_key"),
        train_tasks_key=train.get("tasks_key"),
    )


def _train_budget(train: Mapping[str, Any]) -> list[str]:
    out = []
    if train.get("experiment"):
        out.append(f"experiment={train['experiment']}")
    if train.get("max_steps") is not None:
        out.append(f"trainer.max_steps={int(train['max_steps'])}")
    return out


def build_plan(cfg: Mapping[str, Any]) -> tuple[Plan, Registry]:
    registry = registry_from_cfg(cfg)
    design = design_from_cfg(cfg.get("sweep") or {})
    return plan(design.cells(registry), registry, plan_settings(cfg)), registry


def open_ledger(cfg: Mapping[str, Any], out: Path) -> Ledger:
    node = cfg.get("ledger") or {}
    return Ledger(
        node.get("storage") or default_storage(out),
        str(node.get("study") or "ledger"),
        node.get("heartbeat_s", 30),
        node.get("grace_s"),
    )


def make_runner(cfg: Mapping[str, Any]) -> StageRunner:
    from hydra.utils import instantiate

    return instantiate(
        dict(cfg.get("runner") or {"_target_": "behavior_lab.sweep.stages.CommandStageRunner"}), _convert_="all"
    )


class SweepApp:
    def __init__(
        self,
        cfg: Mapping[str, Any],
        ablation: str,
        task_overrides: Sequence[str] = (),
        runner: StageRunner | None = None,
        progress: Silent | None = None,
        job_num: int = 0,
    ):
        self.cfg = cfg
        self.ablation = ablation
        self.task_overrides = list(task_overrides)
        self.out = Path(str(cfg.get("out") or "outputs/sweep")).resolve()
        self.runner = runner if runner is not None else make_runner(cfg)
        self.progress = progress if progress is not None else SweepProgress()
        self.job_num = job_num
        self.ledger = open_ledger(cfg, self.out)

    # --- modes -----------------------------------------------------------------------------------
    def run(self) -> SweepSummary:
        self.out.mkdir(parents=True, exist_ok=True)
        worker = (self.cfg.get("worker") or {}).get("train")
        if worker is not None:
            return self.run_worker(worker_ids(worker))
        if (self.cfg.get("sweep") or {}).get("mode") == "search":
            return self.run_search()
        the_plan, _ = build_plan(self.cfg)
        self._write_plan(the_plan)
        summary = SweepSummary(self.ablation, self.out, the_plan.summary())
        launcher = str(self.cfg.get("launcher") or "sequential")
        check_launcher(launcher)
        driver = SweepDriver(the_plan, self.ledger, self.runner, self.out, self.progress)
        jobs = resolve_jobs(self.cfg.get("jobs", 1))
        if launcher == "sequential" and jobs > 1:
            outcome = self._run_local_jobs(driver, jobs)
        elif launcher == "sequential":
            outcome = driver.run()
        else:
            outcome = self._run_multirun(driver, launcher)
        summary.ran, summary.failed = outcome.ran, outcome.failed
        driver.refresh()
        summary.pending = sum(1 for u in the_plan.units if not driver.is_done(u))
        self._report([the_plan], driver, summary)
        return summary

    def run_worker(self, train_ids: list[str]) -> SweepSummary:
        """One multirun job: the given trainings and their evaluations, on its own GPU."""
        the_plan, _ = build_plan(self.cfg)
        known = {u.id for u in the_plan.trains}
        unknown = [i for i in train_ids if i not in known]
        if unknown:
            raise ValueError(
                f"worker.train={unknown} are not trainings of this sweep's plan "
                "(the multirun must get the same overrides as the sweep that launched it)"
            )
        gpus = resolve_gpus(self.cfg.get("gpus"))
        with GpuSlot(gpus, self.job_num, self.out / ".gpu_locks") as slot:
            runner = self.runner.with_env(slot.env) if slot.env and hasattr(self.runner, "with_env") else self.runner
            driver = SweepDriver(the_plan, self.ledger, runner, self.out, self.progress)
            outcome = driver.run(train_ids=train_ids, prepare=False)
        return SweepSummary(self.ablation, self.out, the_plan.summary(), outcome.ran, outcome.failed)

    def run_search(self) -> SweepSummary:
        node = self.cfg.get("sweep") or {}
        if str(self.cfg.get("launcher") or "sequential") != "sequential":
            raise ValueError(
                "sweep.mode=search runs its trials from this process (TPE proposes one after another); "
                "to search in parallel, start the same command several times on one ledger "
                "(a PostgreSQL ledger.storage across machines): they share the study and split the trials"
            )
        settings = search_settings(node.get("search") or {}, self.ablation)
        search = Search(
            settings,
            registry_from_cfg(self.cfg),
            node.get("fixed") or {},
            plan_settings(self.cfg),
            self.ledger,
            self.runner,
            self.out,
            self.progress,
        )
        result = search.run()
        summary = SweepSummary(
            self.ablation, self.out, {"search_trials": settings.n_trials, "completed": result.completed}
        )
        summary.ran, summary.failed, summary.best = {"search_trials": result.ran}, result.failed, result.best
        summary.pending = max(settings.n_trials - result.completed, 0)
        driver = SweepDriver(result.plans[0], self.ledger, self.runner, self.out) if result.plans else None
        if driver is not None:
            driver.refresh()
            self._report(result.plans, driver, summary)
        return summary

    # --- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _dataset_then_pending(driver: SweepDriver) -> tuple[Outcome, list[str]]:
        """Run the dataset unit here (when the sweep generates one); then the ids of the trainings
        that still miss a unit (their own, or an evaluation). No pending ids when the dataset failed."""
        outcome = driver.run(train_ids=[])
        if outcome.failed or outcome.blocked:
            return outcome, []
        driver.refresh()
        pending = [
            t.id
            for t in driver.plan.trains
            if not driver.is_done(t) or any(not driver.is_done(e) for e in driver.plan.evals_of(t.id))
        ]
        return outcome, pending

    @staticmethod
    def _ledger_failures(driver: SweepDriver, units, outcome: Outcome) -> None:
        """Units another process failed (and nobody finished since), read back from the ledger;
        a unit this process already reported is not listed twice."""
        driver.refresh()
        for u in units:
            st = driver.states.get(u.id)
            if st and not st.done and st.failures and not any(driver.label(u) in f for f in outcome.failed):
                outcome.failed.append(f"{u.kind} {driver.label(u)}: see the ledger trial's `error` attr")

    def _run_local_jobs(self, driver: SweepDriver, jobs: int) -> Outcome:
        """`jobs=N` on one machine: the dataset here, then this process and N-1 copies of the sweep
        (worker mode, same overrides) split the trainings and evaluations through the ledger, each
        stage with cpu_count // N torch threads. On 2 cores two 1-thread jobs do ~1.3x the work of one
        2-thread job (tiny ops scale poorly across threads) and an evaluation (1 thread) overlaps a
        training instead of leaving a core idle (docs/status.md)."""
        outcome, pending = self._dataset_then_pending(driver)
        if not pending:
            return outcome
        env = thread_env(jobs)
        argv = local_job_argv(self.task_overrides, pending)
        log_dir = self.out / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        children = []
        for k in range(1, min(jobs, len(pending))):
            log = (log_dir / f"job{k}.log").open("w")
            log.write(" ".join(argv) + "\n")
            log.flush()
            children.append((k, log, subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **env}, preexec_fn=bind_to_parent if os.name == "posix" else None,
            )))
        runner = self.runner.with_env(env) if hasattr(self.runner, "with_env") else self.runner
        mine = SweepDriver(driver.plan, self.ledger, runner, self.out, self.progress)
        try:
            part = mine.run(train_ids=pending, prepare=False)
        except BaseException:
            for _, _, proc in children:
                proc.terminate()
            raise
        finally:
            for k, log, proc in children:
                rc = proc.wait()
                log.close()
                if rc != 0:
                    outcome.failed.append(f"sweep job {k} exited with {rc}; log: {log_dir / f'job{k}.log'}")
        outcome.ran = {k: outcome.ran.get(k, 0) + part.ran.get(k, 0) for k in {*outcome.ran, *part.ran}}
        outcome.failed += part.failed
        self._ledger_failures(driver, driver.plan.units, outcome)
        return outcome

    def _run_multirun(self, driver: SweepDriver, launcher: str) -> Outcome:
        """Dataset here, then one multirun job per pending training (with its evaluations)."""
        outcome, pending = self._dataset_then_pending(driver)
        if not pending:
            return outcome
        gpus = [] if launcher.startswith("submitit") else resolve_gpus(self.cfg.get("gpus"))
        argv = multirun_argv(
            self.task_overrides,
            pending,
            launcher,
            [
                f"hydra.launcher.{k}={format_override_value(v)}"
                for k, v in (self.cfg.get("launcher_params") or {}).items()
            ]
            + [str(o) for o in self.cfg.get("launcher_overrides") or []],
            len(gpus),
        )
        units = driver.plan.units
        totals = {kind: sum(u.kind == kind for u in units) for kind in ("data", "train", "eval")}
        driver.refresh()
        self.progress.stop()
        self.progress = type(self.progress)() if isinstance(self.progress, SweepProgress) else self.progress
        self.progress.start(totals, driver.done_counts(units))

        def poll() -> None:
            driver.refresh()
            self.progress.set_done(driver.done_counts(units))

        log = self.out / "logs" / f"multirun-{launcher}.log"
        try:
            rc = run_multirun(argv, log, poll)
        finally:
            self.progress.stop()
        self._ledger_failures(driver, units, outcome)
        if rc != 0:
            outcome.failed.append(f"the {launcher} multirun exited with {rc}; log: {log}")
        return outcome

    def _write_plan(self, the_plan: Plan) -> None:
        body = {
            "ablation": self.ablation,
            **the_plan.summary(),
            "cells": [c.description() for c in the_plan.cells],
            "trainings": [{"id": u.id, "overrides": list(u.overrides)} for u in the_plan.trains],
            "evaluations": [
                {"id": u.id, "train": u.depends_on, "task": u.task, "overrides": list(u.overrides)}
                for u in the_plan.evals
            ],
        }
        tmp = self.out / "plan.json.tmp"
        tmp.write_text(json.dumps(body, indent=1, default=str))
        os.replace(tmp, self.out / "plan.json")

    def _report(self, plans: Sequence[Plan], driver: SweepDriver, summary: SweepSummary) -> None:
        recs = [r for p in plans for r in records(p, driver.states)]
        summary.results = write_results_tree(recs, self.out / "results")
        rep = self.cfg.get("report") or {}
        if not rep.get("enabled", True) or not recs:
            return
        settings = plans[0].settings
        overrides = [
            f"tasks={format_override_value(list(settings.tasks))}",
            f"episodes_per_task={settings.episodes_per_task}",
        ]
        root = driver.data_root()
        if root is not None and (root / "meta" / "episodes.jsonl").is_file():
            overrides.append(f"dataset_root={root}")
        out = Path(rep.get("out") or self.out / "report")
        try:
            summary.report = Path(self.runner.report(summary.results, out, overrides))
        except Exception as e:  # the results stay; the report can be rerun by hand
            summary.failed.append(f"report: {str(e).splitlines()[0]}")
