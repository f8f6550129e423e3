"""The Optuna ledger: claims, results, crash detection (dead pid, missing heartbeat), claim races."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid

import pytest
from optuna.trial import FrozenTrial, TrialState

from behavior_lab.sweep.ledger import Ledger, claim_is_dead, process_identity
from behavior_lab.sweep.units import Unit

# Set BEHAVIOR_LAB_TEST_PG_URL (e.g. postgresql+psycopg2://postgres@/ledger?host=/tmp&port=54329) to run
# these ledger tests against PostgreSQL as well; each test then uses its own study.
PG_URL = os.environ.get("BEHAVIOR_LAB_TEST_PG_URL")


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def backend(request):
    return request.param


@pytest.fixture
def _ledger(tmp_path, backend):
    study = f"t{uuid.uuid4().hex[:12]}"

    def make(**kw) -> Ledger:
        if backend == "sqlite":
            return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", **kw)
        return Ledger(PG_URL, study=study, **kw)

    return make


def test_claim_complete_and_skip(tmp_path, _ledger):
    led = _ledger()
    u = Unit("train", {"train": {"toggle:x": True}, "seed": 0})
    claim = led.claim(u, {"seed": 0})
    assert claim is not None
    with claim:
        assert led.claim(u) is None  # held by a live process (us)
        trial = claim.complete(0.0, {"ckpt": "runs/train/x/export"})
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["unit_id"] == u.id
    assert trial.user_attrs["ckpt"] == "runs/train/x/export" and trial.user_attrs["description"]["seed"] == 0
    assert led.claim(u) is None  # done: never recomputed
    states = _ledger().states()  # a second process sees the same
    assert states[u.id].done.number == trial.number


def test_failed_unit_is_retried(tmp_path, _ledger):
    led = _ledger()
    u = Unit("eval", {"task": "a"})
    with led.claim(u) as c:
        c.fail("boom")
    st = led.states()[u.id]
    assert st.done is None and st.failures == 1
    again = led.claim(u)
    assert again is not None and again.number != c.number
    with again:
        again.complete(0.5, {})
    assert led.states()[u.id].done.value == 0.5


def test_exception_inside_claim_marks_fail(tmp_path, _ledger):
    led = _ledger()
    u = Unit("eval", {"task": "b"})
    try:
        with led.claim(u):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    t = led.trials()[0]
    assert t.state == TrialState.FAIL and "KeyboardInterrupt" in t.user_attrs["error"]


def test_dead_process_claim_is_detected(tmp_path, _ledger):
    """A claim made by a process that died (SIGKILL-like: no cleanup) is failed and redone."""
    led = _ledger()
    code = (
        "import os; from behavior_lab.sweep.ledger import Ledger; from behavior_lab.sweep.units import Unit;"
        f"l = Ledger({led.url!r}, study={led.study_name!r}); c = l.claim(Unit('train', {{'k': 1}}));"
        "print(c.number, flush=True); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    number = int(out.stdout.strip())
    assert led.trials()[number].state == TrialState.RUNNING
    assert led.fail_stale() == [number]
    t = led.trials()[number]
    assert t.state == TrialState.FAIL and "is gone" in t.user_attrs["error"]
    assert led.claim(Unit("train", {"k": 1})) is not None


def test_foreign_claim_without_heartbeat_goes_stale_after_grace(tmp_path, _ledger):
    led = _ledger(heartbeat_s=1, grace_s=2)
    u = Unit("train", {"k": 2})
    foreign = {**process_identity(), "host": "elsewhere", "pid": 1}
    assert not claim_is_dead(foreign)  # another machine: only its heartbeat can tell
    old = datetime.datetime.now() - datetime.timedelta(seconds=30)
    template = FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=old,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={"unit_id": u.id, "claim": foreign},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )
    led.storage.create_new_trial(led.study_id, template_trial=template)
    assert led.fail_stale() == [0]
    assert "no heartbeat" in led.trials()[0].user_attrs["error"]


def test_foreign_claim_with_live_heartbeat_is_kept_then_stale(tmp_path, _ledger):
    led = _ledger(heartbeat_s=1, grace_s=2)
    u = Unit("train", {"k": 3})
    foreign = {**process_identity(), "host": "elsewhere", "pid": 1}
    template = FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={"unit_id": u.id, "claim": foreign},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )
    tid = led.storage.create_new_trial(led.study_id, template_trial=template)
    led.storage.record_heartbeat(tid)
    assert led.fail_stale() == [] and led.claim(u) is None
    import time

    time.sleep(3.5)  # heartbeat older than the grace period: Optuna's fail_stale_trials fails it
    assert led.fail_stale() == [0]
    assert led.claim(u) is not None


def test_lost_claim_race_backs_off(tmp_path, _ledger):
    """Two processes claim at once: the lower trial number wins, the other is set FAIL."""
    led = _ledger()
    u = Unit("eval", {"task": "race"})
    first = led.claim(u)
    # simulate the rival having slipped past the check: create its RUNNING trial directly
    template = FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={"unit_id": u.id, "claim": process_identity()},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )
    rival = led.storage.create_new_trial(led.study_id, template_trial=template)
    assert {s for _, s in led.unit_trials(u.id)} == {TrialState.RUNNING}
    assert first.trial_id < rival
    with first:
        first.complete(1.0, {})
    assert sorted(s.name for _, s in led.unit_trials(u.id)) == ["COMPLETE", "RUNNING"]


def test_late_result_after_being_failed_is_kept(tmp_path, _ledger):
    """If another process wrongly failed our trial as stale, our finished result is still recorded."""
    led = _ledger()
    u = Unit("eval", {"task": "late"})
    c = led.claim(u)
    led._set_state(c.trial_id, TrialState.FAIL, error="stale: test")
    trial = c.complete(0.7, {"metrics": {"episodes": []}})
    assert trial.state == TrialState.COMPLETE and trial.value == 0.7 and trial.number != c.number
    assert led.states()[u.id].done.number == trial.number
