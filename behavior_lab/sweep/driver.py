"""The sweep driver: runs a plan's missing units through a StageRunner, recording each in the ledger.

Order: the dataset (when the sweep generates one), then for each training its evaluations right
after it, so results arrive early and a checkpoint is used while its files are warm. A unit that
is already COMPLETE in the ledger is skipped. One held by a live process elsewhere is left to it
at first and waited for at the end, so several copies of the same command (on one machine, or on
several sharing a PostgreSQL ledger) split the work between them. One whose trial went stale (its
process died) is redone. A failing unit
is recorded FAIL with its error and the sweep goes on; the units that need its output are counted
as blocked and run on the next invocation.

A retried training or evaluation keeps its run folder: `behavior-lab train` (resume=auto) continues
from its last checkpoint, `behavior-lab eval` skips the episodes already written. A dataset is
regenerated from an empty folder.

Run folders (paths relative to `out` are stored, so an `out` folder can be moved):
    out/runs/data/<id>/    out/runs/train/<id>/    out/runs/eval/<id>/
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from behavior_lab.sweep.ledger import Ledger, UnitState
from behavior_lab.sweep.planner import Plan
from behavior_lab.sweep.progress import Silent
from behavior_lab.sweep.results import read_episodes, task_score
from behavior_lab.sweep.stages import StageError, StageRunner
from behavior_lab.sweep.units import Unit

# Stages that continue a killed run from their folder: `behavior-lab train` from
# <out>/checkpoints/last.ckpt (resume=auto), `behavior-lab eval` by skipping finished episodes.
RESUMABLE = ("train", "eval")
BUSY = "busy"  # a unit another live process holds


@dataclass
class Outcome:
    ran: dict[str, int] = field(default_factory=lambda: {"data": 0, "train": 0, "eval": 0})
    skipped: int = 0  # already COMPLETE
    failed: list[str] = field(default_factory=list)  # "<kind> <label>: <error>"
    blocked: int = 0  # needed a unit that failed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked


class SweepDriver:
    def __init__(
        self,
        plan: Plan,
        ledger: Ledger,
        runner: StageRunner,
        out: Path,
        progress: Silent | None = None,
        attrs: dict[str, Any] | None = None,
        wait_s: float = 5.0,
    ):
        self.plan, self.ledger, self.runner = plan, ledger, runner
        self.out = Path(out).resolve()
        self.progress = progress or Silent()
        self.attrs = dict(attrs or {})  # extra user_attrs for every trial (e.g. search trial number)
        self.wait_s = wait_s
        self.states: dict[str, UnitState] = {}

    # --- bookkeeping -----------------------------------------------------------------------------
    def refresh(self) -> dict[str, UnitState]:
        self.states = self.ledger.states()
        return self.states

    def done_counts(self, units: Iterable[Unit] | None = None) -> dict[str, int]:
        counts = {"data": 0, "train": 0, "eval": 0}
        for u in self.plan.units if units is None else units:
            st = self.states.get(u.id)
            if st and st.done:
                counts[u.kind] += 1
        return counts

    def is_done(self, unit: Unit) -> bool:
        st = self.states.get(unit.id)
        return bool(st and st.done)

    def output_of(self, unit: Unit, key: str) -> Path | None:
        """A path a finished unit recorded (relative to `out` when inside it)."""
        st = self.states.get(unit.id)
        if not st or not st.done or key not in st.done.user_attrs:
            return None
        p = Path(st.done.user_attrs[key])
        return p if p.is_absolute() else self.out / p

    def _rel(self, p: Path) -> str:
        p = Path(p).resolve()
        try:
            return str(p.relative_to(self.out))
        except ValueError:
            return str(p)

    def run_dir(self, unit: Unit) -> Path:
        return self.out / "runs" / unit.kind / unit.id

    def label(self, unit: Unit) -> str:
        """Short human label: the dataset, a training's toggles, or an evaluation's cell."""
        if unit.kind == "data":
            return f"{len(self.plan.settings.tasks)} tasks"
        if unit.kind == "train":
            parts = [
                f"{k.split(':', 1)[1]}={'on' if v is True else 'off' if v is False else v}"
                for k, v in sorted(unit.description["train"].items())
            ]
            return f"{','.join(parts) or 'default'} seed {unit.seed}"
        members = self.plan.members.get(unit.id, [])
        cell = members[0].cell.name if members else unit.id
        return f"{cell} seed {unit.seed} {unit.task}"

    # --- running ---------------------------------------------------------------------------------
    def run(self, train_ids: Iterable[str] | None = None, prepare: bool = True) -> Outcome:
        """Run the missing units (all trainings, or only `train_ids` and their evaluations)."""
        outcome = Outcome()
        self.refresh()
        trains = self.plan.trains if train_ids is None else [u for u in self.plan.trains if u.id in set(train_ids)]
        units = (
            ([self.plan.data] if self.plan.data else [])
            + trains
            + [e for t in trains for e in self.plan.evals_of(t.id)]
        )
        totals = {"data": 0, "train": 0, "eval": 0}
        for u in units:
            totals[u.kind] += 1
        self.progress.start(totals, self.done_counts(units))
        try:
            data_root = self._data(outcome, prepare)
            if data_root is None:
                outcome.blocked += len(units) - (1 if self.plan.data else 0)
                return outcome
            # First pass skips what another live process holds; the second waits for it (the
            # other process finishes it, or dies and the unit becomes claimable again).
            deferred = [t for t in trains if not self._train_group(t, data_root, outcome, wait=False)]
            for train in deferred:
                self._train_group(train, data_root, outcome, wait=True)
        finally:
            self.progress.stop()
        return outcome

    def _train_group(self, train: Unit, data_root: Path, outcome: Outcome, wait: bool) -> bool:
        """A training and its evaluations; False when some unit was left to another process."""
        ckpt = self._train(train, data_root, outcome, wait)
        if ckpt is BUSY:
            return False
        complete = True
        for ev in self.plan.evals_of(train.id):
            if self.is_done(ev):
                outcome.skipped += 1
            elif ckpt is None:
                outcome.blocked += 1
            elif self._eval(ev, ckpt, outcome, wait) is BUSY:
                complete = False
        return complete

    def data_root(self) -> Path | None:
        if self.plan.data is None:
            return Path(self.plan.settings.data_root).resolve()
        return self.output_of(self.plan.data, "root")

    def _data(self, outcome: Outcome, prepare: bool) -> Path | None:
        unit = self.plan.data
        if unit is None or self.is_done(unit):
            return self.data_root()
        if not prepare:
            outcome.blocked += 1
            return None
        s = self.plan.settings

        def work(run_dir: Path) -> tuple[float, dict]:
            root = self.runner.prepare_data(
                s.tasks, s.data_episodes_per_task, s.data_seed, s.data_overrides, run_dir, s.stats_overrides
            )
            return 0.0, {"root": self._rel(root)}

        ok = self._execute(unit, work, {"tasks": list(s.tasks)}, outcome, wait=True)
        return self.data_root() if ok is True else None

    def _train(self, unit: Unit, data_root: Path, outcome: Outcome, wait: bool):
        """The checkpoint path; None when it failed; BUSY when another process holds it."""
        if self.is_done(unit):
            outcome.skipped += 1
        else:

            def work(run_dir: Path) -> tuple[float, dict]:
                ckpt = self.runner.train(list(unit.overrides), data_root, run_dir)
                if not Path(ckpt).exists():
                    raise StageError(f"train returned {ckpt}, which does not exist")
                return 0.0, {"ckpt": self._rel(ckpt)}

            result = self._execute(unit, work, {"seed": unit.seed}, outcome, wait)
            if result is not True:
                return BUSY if result is BUSY else None
        ckpt = self.output_of(unit, "ckpt")
        if ckpt is None or not ckpt.exists():
            pending = [e for e in self.plan.evals_of(unit.id) if not self.is_done(e)]
            if pending:
                outcome.failed.append(
                    f"training {self.label(unit)}: its checkpoint {ckpt} is gone; "
                    f"{len(pending)} evaluations need it (remove {self.ledger.url} trial "
                    f"of unit {unit.id} or restore the file)"
                )
            return None
        return ckpt

    def _eval(self, unit: Unit, ckpt: Path, outcome: Outcome, wait: bool):
        s = self.plan.settings
        member = self.plan.members[unit.id][0]

        def work(run_dir: Path) -> tuple[float, dict]:
            metrics_dir = self.runner.eval(ckpt, list(unit.overrides), [unit.task], s.episodes_per_task, run_dir)
            episodes = read_episodes(Path(metrics_dir), unit.task)
            if not episodes:
                raise StageError(f"eval wrote no metrics for task {unit.task} under {metrics_dir}")
            score = task_score(episodes, unit.task, s.episodes_per_task)
            return score, {"metrics": {"episodes": episodes}, "q_score": score, "ckpt": self._rel(ckpt)}

        attrs = {
            **member.cell.description(),
            "seed": unit.seed,
            "task": unit.task,
            "episodes_per_task": s.episodes_per_task,
        }
        return self._execute(unit, work, attrs, outcome, wait)

    def _execute(
        self, unit: Unit, work: Callable[[Path], tuple[float, dict]], attrs: dict, outcome: Outcome, wait: bool = False
    ):
        """Claim, run, record. True: COMPLETE afterwards; False: failed; BUSY: held elsewhere (wait=False)."""
        while (claim := self.ledger.claim(unit, {**attrs, **self.attrs})) is None:
            done = [tid for tid, state in self.ledger.unit_trials(unit.id) if state.name == "COMPLETE"]
            if done:
                self.states.setdefault(unit.id, UnitState()).done = self.ledger.trial(min(done))
                outcome.skipped += 1
                return True
            if not wait:
                return BUSY
            self.progress.begin(unit.kind, f"waiting for another process: {self.label(unit)}")
            time.sleep(self.wait_s)
        label = self.label(unit)
        self.progress.begin(unit.kind, label)
        t0 = time.perf_counter()
        with claim:
            run_dir = self.run_dir(unit)
            # Leftovers of an attempt that crashed or failed: trainings and evaluations resume
            # from them (RESUMABLE), a dataset starts from an empty folder.
            if run_dir.exists() and unit.kind not in RESUMABLE:
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            try:
                value, result = work(run_dir)
            except Exception as e:  # one unit's failure is recorded; the sweep goes on
                detail = str(e) if isinstance(e, StageError) else traceback.format_exc(limit=8)
                claim.fail(detail)
                outcome.failed.append(f"{unit.kind} {label}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                self.progress.end(unit.kind, label, False, str(e).splitlines()[0] if str(e) else "")
                return False
            seconds = round(time.perf_counter() - t0, 2)
            trial = claim.complete(value, {**result, "seconds": seconds})
        self.states.setdefault(unit.id, UnitState()).done = trial
        outcome.ran[unit.kind] += 1
        detail = f"q={value:.3f} " if unit.kind == "eval" else ""
        self.progress.end(unit.kind, label, True, f"{detail}({seconds:.1f} s)")
        return True
