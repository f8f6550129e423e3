"""The sweep ledger: an Optuna 5 RDB study used as a result store keyed by our own unit ids.

Every unit of work (data / train / eval) is one trial whose `user_attrs` carry `unit_id`, `kind`,
`claim` (host, boot id, pid, pid start time) and, for evaluations, `cell`, `toggles`, `seed`,
`task`, `episodes_per_task` and `metrics` ({"episodes": [...]}, the reporting ledger format).
Trials are created directly through the storage (no sampler, no GridSampler: its crash-recovery
pitfalls are in ml-stack-measurements.md §5.3) in state RUNNING when a unit is claimed, and set
COMPLETE (value = the unit's score) or FAIL when it ends.

Crash recovery, run before every scheduling decision:
- a RUNNING trial claimed on this machine (same host name and boot id) whose process is gone
  (pid missing or started at another time) is set FAIL at once;
- a RUNNING trial from another machine is set FAIL when its heartbeat (recorded every
  `heartbeat_s` by a thread while the unit runs) is older than `grace_s` (Optuna's own
  `fail_stale_trials`), or when it never beat and was claimed more than `grace_s` ago.
A unit is done when it has a COMPLETE trial; those are never touched again. SQLite by default
(`sqlite:///out/ledger.db`); a PostgreSQL URL works the same.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from behavior_lab.sweep.units import Unit, canonical

DEFAULT_STUDY = "ledger"


def default_storage(out: str | Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'ledger.db'}"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_start(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 overall; fields after the comm


def process_identity(pid: int | None = None) -> dict[str, Any]:
    pid = os.getpid() if pid is None else pid
    return {
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pid": pid,
        "pid_start": _pid_start(pid),
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def claim_is_dead(claim: Mapping[str, Any]) -> bool:
    """True when `claim` names a process on this machine that no longer exists."""
    me = process_identity()
    if claim.get("host") != me["host"] or claim.get("boot") != me["boot"]:
        return False  # another machine: only its heartbeat can tell
    pid = int(claim.get("pid", -1))
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    start = _pid_start(pid)
    return claim.get("pid_start") is not None and start is not None and start != claim.get("pid_start")


def open_storage(url: str, heartbeat_s: int | None = 30, grace_s: int | None = None) -> RDBStorage:
    """An RDBStorage; several processes may open a new ledger at once (the schema is created once)."""
    engine_kwargs: dict[str, Any] = {}
    lock = None
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        # Parallel workers share one SQLite file: wait for the write lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 120}
        lock = db.with_name(db.name + ".lock")
    for attempt in range(5):
        try:
            with _file_lock(lock), warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=grace_s if heartbeat_s else None,
                )
                if lock is not None:
                    _sqlite_wal(storage)
            return storage
        except Exception as e:  # another machine created the schema between check and create
            import sqlalchemy.exc

            if not isinstance(e, sqlalchemy.exc.SQLAlchemyError) or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _file_lock(path: Path | None):
    if path is None:
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sqlite_wal(storage: RDBStorage) -> None:
    """WAL journal + synchronous=NORMAL: a commit no longer waits for an fsync (measured 19 ms ->
    well under 1 ms per commit, sweep/bench.py). A process crash (SIGKILL) loses nothing that was
    committed; only a power cut may drop the last commits, which a rerun then redoes. Readers no
    longer block the writer, which parallel workers need. (Not for SQLite on NFS: use PostgreSQL.)"""
    import sqlalchemy

    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened before the listener get replaced


def _trial_template(state, value, start, complete, user_attrs: dict) -> FrozenTrial:
    """A parameter-free trial to insert directly into storage (the ledger owns its bookkeeping)."""
    return FrozenTrial(number=-1, state=state, value=value, datetime_start=start, datetime_complete=complete,
                       params={}, distributions={}, user_attrs=user_attrs, system_attrs={},
                       intermediate_values={}, trial_id=-1)


@dataclass
class UnitState:
    """What the ledger knows about one unit: its finished trial, or who is running it."""

    done: FrozenTrial | None = None
    running: FrozenTrial | None = None
    failures: int = 0


class Ledger:
    def __init__(
        self, storage: str, study: str = DEFAULT_STUDY, heartbeat_s: int | None = 30, grace_s: int | None = None
    ):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.url = storage
        self.study_name = study
        self.heartbeat_s = heartbeat_s
        self.grace_s = grace_s if grace_s is not None else (3 * heartbeat_s if heartbeat_s else 3600)
        self.storage = open_storage(storage, heartbeat_s, self.grace_s)
        self.study = optuna.create_study(
            storage=self.storage, study_name=study, direction="maximize", load_if_exists=True
        )
        self.study_id = self.storage.get_study_id_from_name(study)

    # --- reading ---------------------------------------------------------------------------------
    def trials(self) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self.study_id, deepcopy=False)

    def states(self, recover: bool = True) -> dict[str, UnitState]:
        """unit id -> UnitState (first COMPLETE trial wins; stale RUNNING trials are failed first)."""
        if recover:
            self.fail_stale()
        out: dict[str, UnitState] = {}
        for t in self.trials():
            uid = t.user_attrs.get("unit_id")
            if uid is None:
                continue
            st = out.setdefault(uid, UnitState())
            if t.state == TrialState.COMPLETE and st.done is None:
                st.done = t
            elif t.state == TrialState.RUNNING:
                st.running = t
            elif t.state == TrialState.FAIL:
                st.failures += 1
        return out

    def unit_trials(self, uid: str) -> list[tuple[int, TrialState]]:
        """(trial_id, state) of every trial of one unit: one indexed SQL query, no trial loading."""
        from optuna.storages._rdb import models  # attribute lookups are not in Optuna's public API

        attr = models.TrialUserAttributeModel
        with self.storage.scoped_session() as session:
            rows = (
                session.query(models.TrialModel.trial_id, models.TrialModel.state)
                .join(attr, attr.trial_id == models.TrialModel.trial_id)
                .filter(
                    models.TrialModel.study_id == self.study_id,
                    attr.key == "unit_id",
                    attr.value_json == json.dumps(uid),
                )
                .all()
            )
        return [(int(tid), TrialState(state) if not isinstance(state, TrialState) else state) for tid, state in rows]

    def trial(self, trial_id: int) -> FrozenTrial:
        return self.storage.get_trial(trial_id)

    # --- crash recovery --------------------------------------------------------------------------
    def fail_stale(self) -> list[int]:
        """Set FAIL on RUNNING trials whose process is gone; returns their trial numbers."""
        running = self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return []
        if self.heartbeat_s:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
        still = {
            t.number for t in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.RUNNING,))
        }
        failed = [t.number for t in running if t.number not in still]
        now = datetime.datetime.now()
        for t in running:
            if t.number not in still:
                continue
            claim = t.user_attrs.get("claim") or {}
            reason = None
            if claim_is_dead(claim):
                reason = f"process {claim.get('pid')} on {claim.get('host')} is gone"
            elif (
                self.heartbeat_s  # without heartbeats a claim from another machine cannot be judged
                and not self._has_heartbeat(t)
                and t.datetime_start
                and (now - t.datetime_start).total_seconds() > self.grace_s
            ):
                reason = f"no heartbeat for more than {self.grace_s} s"
            if reason and self._set_state(t._trial_id, TrialState.FAIL, error=f"stale: {reason}"):
                failed.append(t.number)
        return failed

    def _has_heartbeat(self, trial: FrozenTrial) -> bool:
        if not self.heartbeat_s:
            return False
        from optuna.storages._rdb import models  # heartbeat rows are only reachable through the models

        with self.storage.scoped_session() as session:
            return models.TrialHeartbeatModel.where_trial_id(trial._trial_id, session) is not None

    def _set_state(
        self, trial_id: int, state: TrialState, value: float | None = None, error: str | None = None
    ) -> bool:
        try:
            if error is not None:
                self.storage.set_trial_user_attr(trial_id, "error", error[-4000:])
            return self.storage.set_trial_state_values(trial_id, state, None if value is None else [value])
        except optuna.exceptions.UpdateFinishedTrialError:
            return False

    # --- writing ---------------------------------------------------------------------------------
    def claim(self, unit: Unit, attrs: Mapping[str, Any] | None = None) -> Claim | None:
        """Start a RUNNING trial for `unit`; None when it is done or a live process already holds it.

        Two processes that claim at the same moment both create a trial; the lower trial number
        wins and the other backs off (its trial is set FAIL with error "lost claim").
        """
        self.fail_stale()
        if any(state in (TrialState.RUNNING, TrialState.COMPLETE) for _, state in self.unit_trials(unit.id)):
            return None
        user_attrs = {
            "unit_id": unit.id,
            "kind": unit.kind,
            "description": canonical(unit.description),
            "claim": process_identity(),
            **canonical(dict(attrs or {}), strict=False),
        }
        template = _trial_template(TrialState.RUNNING, None, datetime.datetime.now(), None, user_attrs)
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        if any(
            tid != trial_id and (state == TrialState.COMPLETE or (state == TrialState.RUNNING and tid < trial_id))
            for tid, state in self.unit_trials(unit.id)
        ):
            self._set_state(trial_id, TrialState.FAIL, error="lost claim to another process")
            return None
        return Claim(self, unit, trial_id)


class Heartbeat:
    """Records a trial's heartbeat every `interval` s in a thread while entered."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval: int | None):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.interval:
            self.storage.record_heartbeat(self.trial_id)
            self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{self.trial_id}")
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a missed beat is harmless; the next one retries
                pass


class Claim:
    """A RUNNING trial held by this process; beats while it is entered as a context manager."""

    def __init__(self, ledger: Ledger, unit: Unit, trial_id: int):
        self.ledger, self.unit, self.trial_id = ledger, unit, trial_id
        self.number = ledger.storage.get_trial_number_from_id(trial_id)
        self._heartbeat = Heartbeat(ledger.storage, trial_id, ledger.heartbeat_s)

    def __enter__(self) -> Claim:
        self._heartbeat.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._heartbeat.__exit__(*exc)
        if exc[0] is not None:  # an exception escaped the unit: never leave the trial RUNNING
            self.fail(f"{exc[0].__name__}: {exc[1]}")

    def complete(self, value: float, attrs: Mapping[str, Any] | None = None) -> FrozenTrial:
        """Record the result; returns the COMPLETE trial that holds it."""
        st = self.ledger.storage
        try:
            for k, v in canonical(dict(attrs or {}), strict=False).items():
                st.set_trial_user_attr(self.trial_id, k, v)
        except optuna.exceptions.UpdateFinishedTrialError:
            return self._record_late(value, attrs)
        if self.ledger._set_state(self.trial_id, TrialState.COMPLETE, value=float(value)):
            return st.get_trial(self.trial_id)
        return self._record_late(value, attrs)

    def _record_late(self, value: float, attrs: Mapping[str, Any] | None) -> FrozenTrial:
        """Our trial was failed as stale by another process while we still ran: keep the result."""
        done = [tid for tid, state in self.ledger.unit_trials(self.unit.id) if state == TrialState.COMPLETE]
        if done:
            return self.ledger.trial(min(done))
        trial = self.ledger.storage.get_trial(self.trial_id)
        user_attrs = {**trial.user_attrs, **canonical(dict(attrs or {}), strict=False)}
        user_attrs.pop("error", None)
        now = datetime.datetime.now()
        template = _trial_template(TrialState.COMPLETE, float(value), trial.datetime_start or now, now, user_attrs)
        return self.ledger.trial(self.ledger.storage.create_new_trial(self.ledger.study_id, template_trial=template))

    def fail(self, error: str) -> None:
        self.ledger._set_state(self.trial_id, TrialState.FAIL, error=error)
