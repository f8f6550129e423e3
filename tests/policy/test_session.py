"""RuntimePolicy (one session per client) and the cross-connection BatchingPredictor."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from .runtime_fakes import ScriptedPredictor, make_obs

from behavior_lab.policy.observation import ObservationError, parse_observation
from behavior_lab.policy.predictor import ChunkRequest
from behavior_lab.policy.session import BatchingPredictor, make_policy_factory

pytestmark = pytest.mark.timeout(60)


def _req(task=1):
    p = parse_observation(make_obs(task=task))
    return ChunkRequest(p.images, p.state, p.task_id, 0, 5)


class GatedPredictor(ScriptedPredictor):
    """The first call blocks until `release` is set; later calls return at once."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, requests):
        if any(r.task_id == 13 for r in requests):
            raise ObservationError("task 13 is not served here")
        if not self.calls:
            self.entered.set()
            self.release.wait(10)
        return super().predict(requests)


def test_requests_queued_during_a_call_share_the_next_call():
    inner = GatedPredictor()
    shared = BatchingPredictor(inner)
    results = {}

    def call(name, task):
        results[name] = shared.predict([_req(task)])

    first = threading.Thread(target=call, args=("a", 1))
    first.start()
    assert inner.entered.wait(10)
    others = [threading.Thread(target=call, args=(n, t)) for n, t in (("b", 2), ("c", 3))]
    for t in others:
        t.start()
    time.sleep(0.2)  # both queued behind the running call
    inner.release.set()
    for t in [first, *others]:
        t.join(10)
    assert [len(c) for c in inner.calls] == [1, 2]
    assert sorted(r.task_id for r in inner.calls[1]) == [2, 3]
    for name, task in (("a", 1), ("b", 2), ("c", 3)):
        np.testing.assert_allclose(results[name].actions[0, 0], _req(task).state)


def test_a_failing_request_fails_only_its_caller():
    inner = GatedPredictor()
    shared = BatchingPredictor(inner)
    errors, results = {}, {}

    def call(name, task):
        try:
            results[name] = shared.predict([_req(task)])
        except ObservationError as exc:
            errors[name] = exc

    first = threading.Thread(target=call, args=("a", 1))
    first.start()
    assert inner.entered.wait(10)
    others = [threading.Thread(target=call, args=(n, t)) for n, t in (("bad", 13), ("ok", 2))]
    for t in others:
        t.start()
    time.sleep(0.2)
    inner.release.set()
    for t in [first, *others]:
        t.join(10)
    assert set(results) == {"a", "ok"} and set(errors) == {"bad"}


def test_policy_factory_gives_independent_sessions():
    pred = ScriptedPredictor()
    factory = make_policy_factory(pred)
    p1, p2 = factory(), factory()
    out = p1.infer(make_obs())
    assert out["action"].shape == (23,) and out["action"].dtype == np.float32
    for _ in range(4):
        p1.infer(make_obs())
    p2.infer(make_obs())
    assert len(pred.calls) == 2 and p1.runtime.sessions[0].index == 5 and p2.runtime.sessions[0].index == 1
    p1.reset()
    assert p1.runtime.sessions[0].plan is None and p2.runtime.sessions[0].plan is not None
