"""Serving benchmarks: server-side overhead per 30 Hz step, loopback round trips, 4-client throughput.

`serving.overhead` (registered with behavior_lab.benchmarks) measures, for OmniGibson-sized
observations (head 720x720x4, wrists 480x480x4 uint8; facts §4):
- decode / runtime / encode per step in-process, with a model-free predictor, so the model call
  is excluded (target: median total <= 2 ms); the runtime figure includes the replan steps'
  spline compression, and `preprocess_ms` is the model adapter's resize + normalise at a replan;
- loopback round trip with the openpi-compatible client and the server's own timing;
- throughput with 4 concurrent clients;
- with the real model (tiny preset, random init) when `behavior_lab.models.factory` exists:
  the chunk call and the amortised cost per step.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import websockets.sync.client

from behavior_lab.benchmarks import register
from behavior_lab.data import schema
from behavior_lab.policy.hold import HoldPositionPredictor
from behavior_lab.policy.runtime import PolicyRuntime
from behavior_lab.policy.session import make_policy_factory
from behavior_lab.serving import msgpack_numpy
from behavior_lab.serving.server import PolicyServer, ServerConfig


def omnigibson_obs(seed: int = 0, task: int = 1) -> dict[str, Any]:
    """An observation with the real sizes and dtypes (facts §4)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=schema.PROPRIO_DIM).astype(np.float32)
    p[schema.PROPRIO_INDICES["gripper_left_qpos"]] = 0.05
    p[schema.PROPRIO_INDICES["gripper_right_qpos"]] = 0.05
    return {
        schema.PROPRIO_KEY: p,
        schema.HEAD_RGB_KEY: rng.integers(0, 255, (720, 720, 4), dtype=np.uint8),
        schema.LEFT_WRIST_RGB_KEY: rng.integers(0, 255, (480, 480, 4), dtype=np.uint8),
        schema.RIGHT_WRIST_RGB_KEY: rng.integers(0, 255, (480, 480, 4), dtype=np.uint8),
        schema.CAM_REL_POSES_KEY: np.zeros(schema.CAM_REL_POSES_DIM, np.float32),
        schema.TASK_ID_KEY: np.array([task], np.int64),
    }


def _ms(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1e3
    return float(np.median(a)), float(np.percentile(a, 99))


def _in_process(steps: int) -> dict[str, float]:
    obs = omnigibson_obs()
    wire = msgpack_numpy.packb(obs)
    runtime = PolicyRuntime(HoldPositionPredictor())
    packer = msgpack_numpy.Packer()
    dec, run, enc, tot = [], [], [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        msg = msgpack_numpy.unpackb(wire)
        t1 = time.perf_counter()
        action = runtime.act([msg])[0]
        t2 = time.perf_counter()
        packer.pack({"action": action, "server_timing": {"infer_ms": 0.0, "prev_total_ms": 0.0}})
        t3 = time.perf_counter()
        dec.append(t1 - t0), run.append(t2 - t1), enc.append(t3 - t2), tot.append(t3 - t0)
    out = {"obs_bytes": float(len(wire))}
    for name, xs in (("decode", dec), ("runtime", run), ("encode", enc), ("overhead", tot)):
        med, p99 = _ms(xs)
        out[f"{name}_median_ms"], out[f"{name}_p99_ms"] = med, p99
    return out


def _preprocess(reps: int) -> dict[str, float]:
    """The model adapter's per-replan input work (resize 3 images, normalise, pad), no model call."""
    from behavior_lab.policy.model_predictor import ModelChunkPredictor, PredictorConfig
    from behavior_lab.policy.observation import parse_observation
    from behavior_lab.policy.predictor import ChunkRequest

    stats = _unit_stats()
    pred = ModelChunkPredictor(object(), stats, PredictorConfig(image_size=224))
    p = parse_observation(omnigibson_obs())
    req = ChunkRequest(p.images, p.state, p.task_id, 0, 5, initial_actions=np.zeros((4, 23), np.float32))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        pred.build_batch([req])
        pred.initial_actions([req])
        times.append(time.perf_counter() - t0)
    med, _ = _ms(times)
    return {"preprocess_ms": med}


def _unit_stats():
    from behavior_lab.data.stats import NormStats

    z32, o32 = np.zeros(32), np.ones(32)
    return NormStats(
        action_mean=np.zeros((30, 32)), action_std=np.ones((30, 32)), action_global_mean=z32,
        action_global_std=o32, action_q01=-o32, action_q99=o32, state_mean=z32, state_std=o32,
        state_q01=-o32, state_q99=o32, task_num_stages={}, task_mean_length={},
        delta_mask=schema.DELTA_ACTION_MASK.copy(),
    )


@contextlib.contextmanager
def _hold_server_process():
    """`behavior-lab serve ckpt=hold port=0` in its own process, so the clients' GIL is not the server's."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "behavior_lab.cli.main", "serve", "ckpt=hold", "port=0", f"out={tmp}",
             "hydra.job_logging.root.level=WARNING"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            port, seen = None, []
            while port is None:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError("serve process exited before listening:\n" + "".join(seen))
                seen.append(line)
                m = re.search(r"serving ws://[\d.]+:(\d+)", line)
                port = int(m.group(1)) if m else None
            # keep draining the child's output so a full pipe can never block the server
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            yield port
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def _thread_server(factory):
    server = PolicyServer(factory, ServerConfig(host="127.0.0.1", port=0))
    server.start_in_thread()
    try:
        yield server.port
    finally:
        server.stop()


def _loopback(port: int, steps: int, clients: int) -> dict[str, float]:
    wire = msgpack_numpy.packb(omnigibson_obs())
    rtts: list[list[float]] = [[] for _ in range(clients)]
    infer: list[list[float]] = [[] for _ in range(clients)]
    server_total: list[float] = []
    server_decode: list[float] = []

    def client(i: int) -> None:
        with websockets.sync.client.connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as ws:
            ws.recv()
            for _ in range(steps):
                t0 = time.perf_counter()
                ws.send(wire)
                reply = msgpack_numpy.unpackb(ws.recv())
                rtts[i].append(time.perf_counter() - t0)
                infer[i].append(reply["server_timing"]["infer_ms"] / 1e3)
                server_decode.append(reply["server_timing"].get("decode_ms", float("nan")) / 1e3)
                if "prev_total_ms" in reply["server_timing"]:
                    server_total.append(reply["server_timing"]["prev_total_ms"] / 1e3)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    med, p99 = _ms([x for r in rtts for x in r])
    return {
        "rtt_median_ms": med,
        "rtt_p99_ms": p99,
        "server_decode_median_ms": _ms(server_decode)[0],
        "server_infer_median_ms": _ms([x for r in infer for x in r])[0],
        # receive-complete -> send-complete on the server (decode + policy + encode + send)
        "server_total_median_ms": _ms(server_total)[0] if server_total else float("nan"),
        "steps_per_s": clients * steps / wall,
    }


def tiny_model(seed: int = 0):
    """The CPU `tiny` preset with the seed's model-side innovations, random init (no download)."""
    import torch
    from omegaconf import OmegaConf

    from behavior_lab.models.factory import build_model

    conf = Path(__file__).resolve().parent.parent / "conf" / "model" / "tiny.yaml"
    cfg = OmegaConf.create({"model": OmegaConf.load(conf), "innovation": SEED_MODEL_INNOVATIONS})
    torch.manual_seed(seed)
    model = build_model(cfg.model, cfg.innovation, correlation_cholesky=np.eye(30 * 32)).eval()
    return model, cfg


# The seed's model-side toggles (spec §15); identity correlation keeps the tiny model download-free.
SEED_MODEL_INNOVATIONS = {
    "task_embeddings": {"enabled": True},
    "correlated_noise": {"enabled": True},
    "kv_transform": {"enabled": True},
    "system2": {"enabled": True},
    "inpainting": {"time_threshold": 0.3},
}


def _model_figures(steps: int) -> dict[str, float]:
    if importlib.util.find_spec("behavior_lab.models.factory") is None:
        return {}
    from behavior_lab.policy.model_predictor import ModelChunkPredictor
    from behavior_lab.policy.observation import parse_observation
    from behavior_lab.policy.predictor import ChunkRequest

    model, cfg = tiny_model()
    pred = ModelChunkPredictor(model, _unit_stats(), cfg)
    p = parse_observation(omnigibson_obs())
    req = ChunkRequest(p.images, p.state, p.task_id, 0, 5)
    pred.predict([req])  # warm-up
    times = []
    for _ in range(max(2, steps // 20)):
        t0 = time.perf_counter()
        pred.predict([req])
        times.append(time.perf_counter() - t0)
    med = statistics.median(times) * 1e3
    out = {"model_chunk_ms": med, "model_per_step_amortised_ms": med / 20}
    factory = make_policy_factory(pred)
    with _thread_server(factory) as port:
        four = _loopback(port, steps, clients=4)
    out.update({"model_clients4_steps_per_s": four["steps_per_s"], "model_clients4_rtt_median_ms": four["rtt_median_ms"]})
    # 4 clients x ceil(steps / 20) chunks; fewer model calls = chunks batched across connections
    out["model_clients4_chunks"] = float(4 * -(-steps // 20))
    out["model_clients4_model_calls"] = float(factory.predictor.model_calls)
    return out


@contextlib.contextmanager
def _quiet_connection_logs():
    """Per-connection INFO lines (ours and websockets') would bury the figures."""
    loggers = [logging.getLogger(n) for n in ("websockets", "behavior_lab.serving.server")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


@register("serving.overhead")
def serving_overhead(quick: bool = False) -> dict:
    """Server overhead per step (decode+runtime+encode, no model call), loopback RTT, 4-client throughput."""
    with _quiet_connection_logs():
        return _serving_overhead(quick)


def _serving_overhead(quick: bool) -> dict:
    steps = 100 if quick else 600
    out: dict[str, float] = {}
    out.update(_in_process(steps))
    out.update(_preprocess(5 if quick else 30))
    with _hold_server_process() as port:
        single = _loopback(port, steps // 2, clients=1)
        four = _loopback(port, steps // 4, clients=4)
    out.update({f"loopback_{k}": v for k, v in single.items()})
    out.update({f"clients4_{k}": v for k, v in four.items()})
    out.update(_model_figures(40 if quick else 120))
    return out
