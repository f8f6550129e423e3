"""`RuntimePolicy`: one environment's policy session over a `PolicyRuntime`, for the server.

The websocket server knows only a `Policy` with `infer(obs) -> dict` and `reset()` (DESIGN §5;
STYLE "the server only knows policy.infer"). Each client connection gets its own
`RuntimePolicy`, hence its own plan, kept actions and stage votes, while the predictor (the
model) is shared between connections through `make_policy_factory`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from behavior_lab.policy.predictor import ChunkPrediction, ChunkPredictor, ChunkRequest
from behavior_lab.policy.runtime import PolicyRuntime


class RuntimePolicy:
    """infer(obs) -> {"action": float32 (23,)}; reset() starts a new episode."""

    def __init__(self, runtime: PolicyRuntime) -> None:
        self.runtime = runtime

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        action = self.runtime.act([obs])[0]
        sess = self.runtime.sessions[0]
        return {
            "action": np.ascontiguousarray(action, dtype=np.float32),
            "policy_timing": {"runtime_ms": (time.perf_counter() - t0) * 1e3},
            "stage": np.int64(sess.stage),
        }

    def reset(self) -> None:
        self.runtime.reset()

    def needs_model(self, obs: Mapping[str, Any]) -> bool:
        """Whether `infer(obs)` will call the model (a replan or a task change). The server runs
        such calls in a worker thread and the cheap ones (19 of 20 steps) inline."""
        if self.runtime.needs_observation(0):
            return True
        tid = obs.get("task_id") if isinstance(obs, Mapping) else None
        try:
            return tid is not None and int(np.asarray(tid).reshape(-1)[0]) != self.runtime.sessions[0].task_id
        except (TypeError, ValueError, IndexError):
            return True  # let infer() report the malformed task id


class _Pending:
    __slots__ = ("requests", "result", "error", "done")

    def __init__(self, requests: Sequence[ChunkRequest]) -> None:
        self.requests = list(requests)
        self.result: ChunkPrediction | None = None
        self.error: BaseException | None = None
        self.done = False


class BatchingPredictor:
    """Shares one predictor between connections served from several threads.

    Calls never overlap. Requests that arrive while a model call is running are queued, and the
    next call takes the whole queue as one batch, so concurrent clients share model calls without
    any added waiting. If a combined call fails, its parts are retried one by one so that one
    client's bad request (an unmapped task, say) fails only that client.
    """

    def __init__(self, inner: ChunkPredictor) -> None:
        self.inner = inner
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self.model_calls = 0

    def predict(self, requests: Sequence[ChunkRequest]) -> ChunkPrediction:
        mine = _Pending(requests)
        with self._cv:
            self._queue.append(mine)
            while not mine.done:
                if self._busy:
                    self._cv.wait()
                    continue
                self._busy = True
                batch, self._queue = self._queue, []
                self._cv.release()
                try:
                    self._run(batch)
                finally:
                    self._cv.acquire()
                    self._busy = False
                    self._cv.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _run(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                self._finish(batch[0], self._call(batch[0].requests))
                return
            out = self._call([r for p in batch for r in p.requests])
            start = 0
            for p in batch:
                n = len(p.requests)
                logits = None if out.stage_logits is None else out.stage_logits[start : start + n]
                self._finish(p, ChunkPrediction(out.actions[start : start + n], logits))
                start += n
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting callers
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            for p in batch:  # isolate the failing request
                self._run([p])

    def _call(self, requests: list[ChunkRequest]) -> ChunkPrediction:
        self.model_calls += 1
        return self.inner.predict(requests)

    @staticmethod
    def _finish(p: _Pending, result: ChunkPrediction) -> None:
        p.result, p.done = result, True


def make_policy_factory(
    predictor: ChunkPredictor,
    cfg: Any = None,
    *,
    norm_stats: Any = None,
    task_num_stages: Mapping[int, int] | None = None,
) -> Callable[[], RuntimePolicy]:
    """A factory giving every new client a fresh session over the shared (batching) predictor."""
    shared = BatchingPredictor(predictor)
    # Validate the settings once, at start-up, rather than on the first connection.
    PolicyRuntime(shared, norm_stats, cfg, task_num_stages=task_num_stages)

    def factory() -> RuntimePolicy:
        return RuntimePolicy(PolicyRuntime(shared, norm_stats, cfg, task_num_stages=task_num_stages))

    factory.predictor = shared  # type: ignore[attr-defined]  # for benchmarks: model_calls
    return factory
