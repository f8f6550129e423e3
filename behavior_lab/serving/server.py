"""Websocket policy server speaking the BEHAVIOR / openpi protocol (DESIGN §5, facts §4, spec §13.1).

- `GET /healthz` -> 200 "OK" (OmniGibson's client polls it before connecting).
- On connect: one msgpack frame with the metadata dict.
- `{"reset": True}` -> `policy.reset()`, no reply.
- Any other dict is an observation -> `policy.infer(obs)` -> msgpack
  `{"action": float32[23], "server_timing": {"infer_ms", "prev_total_ms"}, ...}`.
- A malformed message (not msgpack, not a dict, missing keys, wrong shapes/dtypes, unknown task)
  gets a *text* frame describing the problem — openpi-client and OmniGibson treat a str reply as a
  server error — and the connection keeps being served, as do all others.

Each connection gets its own policy from `policy_factory()` (a fresh runtime session per client).
The server knows nothing but `infer(obs) -> dict` and `reset()` (plus an optional
`needs_model(obs) -> bool` hint). Inference that calls the model runs in a worker thread so one
client's model call does not stall the event loop (health checks, other clients).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import http
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve

from behavior_lab.serving import msgpack_numpy

logger = logging.getLogger(__name__)


class Policy(Protocol):
    def infer(self, obs: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def reset(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    api_key: str | None = None  # when set, clients must send "Authorization: Api-Key <key>"
    # Largest accepted message; an OmniGibson 720^2 + 2x480^2 RGBA observation is ~3.9 MB.
    max_message_bytes: int | None = 32 * 1024 * 1024
    infer_in_thread: bool = True
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class ClientError(ValueError):
    """A message this server cannot act on; reported to the client as a text frame."""


def _is_client_error(exc: BaseException) -> bool:
    # Observation / wire problems are ValueError / KeyError / TypeError subclasses raised while
    # decoding or parsing; anything else is a server bug and is logged with its traceback.
    return isinstance(exc, (ValueError, KeyError, TypeError))


class PolicyServer:
    def __init__(self, policy_factory: Callable[[], Policy], cfg: ServerConfig | None = None) -> None:
        self.policy_factory = policy_factory
        self.cfg = cfg or ServerConfig()
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.connections = 0
        self.port = self.cfg.port  # the bound port once serving (differs when cfg.port is 0)
        self.on_ready: Callable[[PolicyServer], None] | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    async def serve(self) -> None:
        """Run until `stop()` is called (or the task is cancelled)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._handle,
            self.cfg.host,
            self.cfg.port,
            compression=None,
            max_size=self.cfg.max_message_bytes,
            process_request=self._process_request,
        ) as server:
            self._server = server
            sock = next(iter(server.sockets))
            self.port = sock.getsockname()[1]
            logger.info("policy server listening on ws://%s:%d", self.cfg.host, self.port)
            self._ready.set()
            if self.on_ready is not None:
                self.on_ready(self)
            await self._stop.wait()

    def serve_forever(self) -> None:
        asyncio.run(self.serve())

    def start_in_thread(self, timeout: float = 10.0) -> threading.Thread:
        """Serve from a daemon thread (tests, benchmarks); returns once the port is bound."""
        failure: list[BaseException] = []

        def target() -> None:
            try:
                self.serve_forever()
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                self._ready.set()

        thread = threading.Thread(target=target, name="policy-server", daemon=True)
        thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"policy server did not start within {timeout} s on {self.cfg.host}:{self.cfg.port}")
        if failure:
            raise RuntimeError(f"policy server failed to start on {self.cfg.host}:{self.cfg.port}: {failure[0]}") from failure[0]
        return thread

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # --- HTTP side --------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request):
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if self.cfg.api_key:
            auth = request.headers.get("Authorization", "")
            scheme, _, key = auth.partition(" ")
            if scheme != "Api-Key" or not hmac.compare_digest(key.strip().encode(), self.cfg.api_key.encode()):
                return connection.respond(http.HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        return None

    # --- websocket side ---------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        peer = ws.remote_address
        logger.info("connection from %s opened", peer)
        packer = msgpack_numpy.Packer()
        try:
            policy = await asyncio.to_thread(self.policy_factory)
            await ws.send(packer.pack(dict(self.cfg.metadata)))
            prev_total_ms: float | None = None
            async for message in ws:
                start = time.monotonic()
                try:
                    reply, timing = await self._respond(policy, message)
                except Exception as exc:  # noqa: BLE001 - every failure becomes an error frame
                    if not _is_client_error(exc):
                        logger.error("error serving %s:\n%s", peer, traceback.format_exc())
                    await ws.send(f"error: {type(exc).__name__}: {exc}")
                    continue
                if reply is None:  # reset: no reply (facts §4)
                    continue
                if prev_total_ms is not None:
                    timing["prev_total_ms"] = prev_total_ms
                reply["server_timing"] = timing
                await ws.send(packer.pack(reply))
                prev_total_ms = (time.monotonic() - start) * 1e3
        except websockets.ConnectionClosed:
            pass
        finally:
            logger.info("connection from %s closed", peer)

    async def _respond(self, policy: Policy, message: bytes | str) -> tuple[dict | None, dict[str, float]]:
        if isinstance(message, str):
            raise ClientError("expected a binary msgpack frame, got a text frame")
        t_dec = time.monotonic()
        msg = msgpack_numpy.unpackb(message)
        decode_ms = (time.monotonic() - t_dec) * 1e3
        if not isinstance(msg, dict):
            raise ClientError(f"expected a msgpack map (an observation or {{'reset': True}}), got {type(msg).__name__}")
        msg = {(k.decode() if isinstance(k, bytes) else k): v for k, v in msg.items()}
        if "reset" in msg:
            await self._call(policy.reset)
            return None, {}
        t0 = time.monotonic()
        # Optional hint (RuntimePolicy.needs_model): steps that only play a planned action skip the
        # worker-thread hop; model calls always leave the event loop free for other clients.
        needs_model = getattr(policy, "needs_model", None)
        if needs_model is not None and not needs_model(msg):
            out = policy.infer(msg)
        else:
            out = await self._call(policy.infer, msg)
        infer_ms = (time.monotonic() - t0) * 1e3
        reply = dict(out)
        action = np.asarray(reply.get("action"))
        if action.dtype.kind != "f":
            raise RuntimeError(f"policy returned a non-float action ({action.dtype})")
        reply["action"] = np.ascontiguousarray(action, dtype=np.float32)
        return reply, {"infer_ms": infer_ms, "decode_ms": decode_ms}

    async def _call(self, fn: Callable, *args: Any) -> Any:
        if self.cfg.infer_in_thread:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)
