"""`behavior-lab serve ckpt=PATH [host=127.0.0.1] [port=8000]`: the websocket policy server.

Composes the predictor (one checkpoint, a task -> checkpoint map, or `ckpt=hold`), wraps it in a
per-connection `RuntimePolicy` factory, and serves it with the BEHAVIOR/openpi protocol.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger(__name__)

HOLD = "hold"


def build_policy_factory(cfg: DictConfig) -> tuple[Any, dict]:
    """(policy factory, metadata) from the serve config."""
    from behavior_lab.policy.config import RuntimeConfig
    from behavior_lab.policy.hold import HoldPositionPredictor
    from behavior_lab.policy.session import make_policy_factory

    runtime_cfg = RuntimeConfig.from_cfg(OmegaConf.to_container(cfg, resolve=True))
    ckpt = str(cfg.ckpt)
    metadata: dict[str, Any] = {"server": "behavior_lab", "ckpt": ckpt}
    if ckpt == HOLD and not cfg.get("task_checkpoints"):
        return make_policy_factory(HoldPositionPredictor(), runtime_cfg), metadata

    from behavior_lab.policy.loading import load_checkpoint
    from behavior_lab.policy.model_predictor import ModelChunkPredictor

    device = str(cfg.get("device", "auto"))

    def load_predictor(path: str):
        model, stats, model_cfg = load_checkpoint(path, device=device)
        return ModelChunkPredictor(model, stats, model_cfg, num_steps=runtime_cfg.num_steps), stats

    default_stats = None
    if cfg.get("task_checkpoints"):
        from behavior_lab.policy.switching import TaskCheckpointSwitcher, read_task_checkpoint_map

        mapping = read_task_checkpoint_map(str(cfg.task_checkpoints))
        default = None if ckpt in ("", HOLD, "None") else ckpt
        predictor = TaskCheckpointSwitcher(
            mapping,
            lambda p: load_predictor(p)[0],
            default_path=default,
            max_loaded=int(cfg.get("max_loaded_checkpoints", 1)),
        )
        metadata["task_checkpoints"] = str(cfg.task_checkpoints)
        # Stage counts per task come from the data stats, which every checkpoint copies (one dataset).
        from behavior_lab.data.stats import NormStats

        default_stats = NormStats.load(default or next(iter(mapping.values())))
    else:
        predictor, default_stats = load_predictor(ckpt)
    return make_policy_factory(predictor, runtime_cfg, norm_stats=default_stats), metadata


def run(cfg: DictConfig) -> None:
    from behavior_lab.serving.server import PolicyServer, ServerConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    factory, metadata = build_policy_factory(cfg)
    max_mb = cfg.get("max_message_mb")
    server = PolicyServer(
        factory,
        ServerConfig(
            host=str(cfg.host),
            port=int(cfg.port),
            api_key=None if cfg.get("api_key") in (None, "") else str(cfg.api_key),
            max_message_bytes=None if max_mb is None else int(float(max_mb) * 1024 * 1024),
            metadata=metadata,
        ),
    )
    server.on_ready = lambda s: print(
        f"serving ws://{s.cfg.host}:{s.port} (health check: http://{s.cfg.host}:{s.port}/healthz); Ctrl-C stops",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("server stopped")
