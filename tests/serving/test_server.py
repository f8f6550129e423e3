"""The websocket server against the reference client (openpi-client) on 127.0.0.1, a free port.

Covers the protocol of DESIGN §5 / facts §4: metadata on connect, 23-D float32 actions with
server_timing, {"reset": True} with no reply, GET /healthz, API key, size limit, and malformed
messages answered with a text frame while the server keeps serving every client.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Sequence

import numpy as np
import pytest
import websockets.sync.client
from openpi_client import msgpack_numpy as ref_msgpack
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from behavior_lab.data import schema
from behavior_lab.policy.predictor import ChunkPrediction, ChunkRequest
from behavior_lab.policy.session import make_policy_factory
from behavior_lab.serving.server import PolicyServer, ServerConfig

pytestmark = [
    pytest.mark.timeout(60),
    # openpi-client 0.1.2 calls websockets' connect() outside a context manager
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning"),
]


class CountingPredictor:
    """Deterministic: chunk[k] = state + k * 0.001 on arm dims; counts calls."""

    def __init__(self):
        self.calls = 0
        self.requests = 0
        self.lock = threading.Lock()

    def predict(self, requests: Sequence[ChunkRequest]) -> ChunkPrediction:
        with self.lock:
            self.calls += 1
            self.requests += len(requests)
        k = np.arange(30, dtype=np.float32)[None, :, None]
        a = np.stack([r.state for r in requests])[:, None, :].repeat(30, axis=1).astype(np.float32)
        a[:, :, 7:14] += 0.001 * k[..., 0][..., None]
        return ChunkPrediction(actions=a, stage_logits=np.zeros((len(requests), 15), np.float32))


def make_obs(task=1, head=(32, 32), wrist=(24, 24)):
    rng = np.random.default_rng(0)
    p = np.zeros(256, np.float32)
    p[schema.PROPRIO_INDICES["gripper_left_qpos"]] = 0.05
    p[schema.PROPRIO_INDICES["gripper_right_qpos"]] = 0.05
    return {
        schema.PROPRIO_KEY: p,
        schema.HEAD_RGB_KEY: rng.integers(0, 255, (*head, 4), dtype=np.uint8),
        schema.LEFT_WRIST_RGB_KEY: rng.integers(0, 255, (*wrist, 4), dtype=np.uint8),
        schema.RIGHT_WRIST_RGB_KEY: rng.integers(0, 255, (*wrist, 4), dtype=np.uint8),
        schema.CAM_REL_POSES_KEY: np.zeros(21, np.float32),
        schema.TASK_ID_KEY: np.array([task], np.int64),
    }


@pytest.fixture
def server_factory():
    servers = []

    def start(predictor=None, **cfg):
        predictor = predictor or CountingPredictor()
        srv = PolicyServer(make_policy_factory(predictor), ServerConfig(host="127.0.0.1", port=0, **cfg))
        srv.start_in_thread()
        servers.append(srv)
        return srv, predictor

    yield start
    for s in servers:
        s.stop()


def test_openpi_client_gets_23d_float32_actions_and_metadata(server_factory):
    srv, pred = server_factory(metadata={"name": "test"})
    client = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    assert client.get_server_metadata() == {"name": "test"}
    for _ in range(3):
        out = client.infer(make_obs())
        assert out["action"].dtype == np.float32 and out["action"].shape == (23,)
    assert {"infer_ms", "prev_total_ms"} <= set(out["server_timing"])
    assert pred.calls == 1  # one chunk serves 20 steps


def test_healthz_returns_200(server_factory):
    srv, _ = server_factory()
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/healthz", timeout=5) as r:
        assert r.status == 200 and r.read() == b"OK\n"


def test_reset_has_no_reply_and_resets_the_session(server_factory):
    srv, pred = server_factory()
    client = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    first = [client.infer(make_obs())["action"] for _ in range(5)]
    assert pred.calls == 1
    client._ws.send(ref_msgpack.packb({"reset": True}))
    again = client.infer(make_obs())["action"]  # the next reply is for this obs, not for the reset
    assert pred.calls == 2  # the plan was dropped: a new chunk at the first step after reset
    np.testing.assert_array_equal(again, first[0])


def test_each_connection_has_its_own_session(server_factory):
    srv, pred = server_factory()
    a = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    b = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    acts_a = [a.infer(make_obs())["action"] for _ in range(3)]
    act_b = b.infer(make_obs())["action"]
    assert pred.calls == 2
    np.testing.assert_array_equal(act_b, acts_a[0])  # b starts its own plan at step 0
    assert not np.array_equal(acts_a[2], acts_a[0])


def _bad_messages():
    good = make_obs()
    missing = dict(good)
    missing.pop(schema.PROPRIO_KEY)
    shape = dict(good, **{schema.PROPRIO_KEY: np.zeros(100, np.float32)})
    dtype = dict(good, **{schema.HEAD_RGB_KEY: np.zeros((8, 8, 3), np.float64)})
    task = dict(good, **{schema.TASK_ID_KEY: np.array([123], np.int64)})
    return {
        "garbage bytes": b"\xc1\xff garbage",
        "not a map": ref_msgpack.packb([1, 2, 3]),
        "missing key": ref_msgpack.packb(missing),
        "wrong shape": ref_msgpack.packb(shape),
        "wrong dtype": ref_msgpack.packb(dtype),
        "unknown task id": ref_msgpack.packb(task),
        "bad array map": ref_msgpack.packb({b"__ndarray__": True, b"data": b"abc", b"dtype": "<f4", b"shape": [5]}),
        "text frame": "hello",
    }


@pytest.mark.parametrize("name", list(_bad_messages()))
def test_malformed_message_gets_text_error_and_server_keeps_serving(server_factory, name):
    srv, _ = server_factory()
    client = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    other = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    client.infer(make_obs())
    client._ws.send(_bad_messages()[name])
    reply = client._ws.recv(timeout=10)
    assert isinstance(reply, str) and reply.startswith("error:")
    with pytest.raises(RuntimeError, match="Error in inference server"):
        client.infer(make_obs(task=99))  # openpi-client raises on text replies
    # same connection and other connections keep working
    assert client.infer(make_obs())["action"].shape == (23,)
    assert other.infer(make_obs())["action"].shape == (23,)


def test_api_key_is_checked(server_factory):
    srv, _ = server_factory(api_key="s3cret")
    with pytest.raises(websockets.exceptions.InvalidStatus):
        WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    with pytest.raises(websockets.exceptions.InvalidStatus):
        WebsocketClientPolicy(host="127.0.0.1", port=srv.port, api_key="wrong")
    ok = WebsocketClientPolicy(host="127.0.0.1", port=srv.port, api_key="s3cret")
    assert ok.infer(make_obs())["action"].shape == (23,)
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/healthz", timeout=5) as r:
        assert r.status == 200  # the health check needs no key


def test_oversized_message_closes_only_that_connection(server_factory):
    srv, _ = server_factory(max_message_bytes=64 * 1024)
    big = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    other = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        big.infer(make_obs(head=(256, 256)))
    assert other.infer(make_obs())["action"].shape == (23,)
    fresh = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
    assert fresh.infer(make_obs())["action"].shape == (23,)


def test_four_concurrent_clients(server_factory):
    srv, pred = server_factory()
    errors, results = [], {}

    def worker(i):
        try:
            c = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
            results[i] = [c.infer(make_obs(task=i + 1))["action"] for _ in range(25)]
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 4
    assert pred.requests == 8  # 4 clients x 2 chunks (steps 0 and 20) ...
    assert pred.calls <= 8  # ... in at most 8 model calls (concurrent requests share one)


def test_torch_form_and_str_keys_are_accepted(server_factory):
    """OmniGibson's client may send tensors as {__torch__: ...} maps."""
    srv, _ = server_factory()
    obs = make_obs()
    p = obs[schema.PROPRIO_KEY]
    obs[schema.PROPRIO_KEY] = {"__torch__": True, "data": p.tobytes(), "dtype": "float32", "shape": list(p.shape)}
    with websockets.sync.client.connect(f"ws://127.0.0.1:{srv.port}", compression=None, max_size=None) as ws:
        ws.recv()
        ws.send(ref_msgpack.packb(obs))
        out = ref_msgpack.unpackb(ws.recv(timeout=10))
    assert out["action"].shape == (23,)


def test_port_in_use_is_reported(server_factory):
    srv, _ = server_factory()
    clash = PolicyServer(make_policy_factory(CountingPredictor()), ServerConfig(host="127.0.0.1", port=srv.port))
    with pytest.raises(RuntimeError, match="failed to start"):
        clash.start_in_thread()
