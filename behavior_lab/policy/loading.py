"""Loading an exported checkpoint (docs/interfaces.md "Exported checkpoint").

A checkpoint is a directory with `config.yaml` (the resolved Hydra config of the training run),
`model.safetensors` (EMA weights), `norm_stats.json` (+ `action_correlation.npz`) and optionally
`fast_tokenizer/`. `load_checkpoint(path) -> (model, norm_stats, cfg)`; every problem names the
file and what to do about it. No weights are ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(RuntimeError):
    """An exported checkpoint directory that cannot be loaded."""


def checkpoint_dir(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if p.is_file() and p.name in (CONFIG_FILE, WEIGHTS_FILE):
        p = p.parent
    if not p.is_dir():
        raise CheckpointError(f"{p}: no such checkpoint directory (the last line `behavior-lab train` prints)")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (p / name).is_file():
            raise CheckpointError(f"{p / name}: missing; {p} is not an exported behavior_lab checkpoint")
    return p


def load_checkpoint(
    path: str | os.PathLike, device: str | None = None, inference_overrides: Any = None
) -> tuple[Any, Any, Any]:
    """(model in eval mode on `device`, NormStats, resolved config) of an exported checkpoint.

    `inference_overrides`: an `innovation` node from an eval/serve config; its inference-only
    sampler settings (`inpainting.*`: tau, guard, propagation, step rule) replace the checkpoint's,
    since they do not change the weights (DESIGN §4)."""
    import torch
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    from behavior_lab.data.stats import NormStats
    from behavior_lab.models.factory import build_model

    p = checkpoint_dir(path)
    cfg = OmegaConf.load(p / CONFIG_FILE)
    if "model" not in cfg:
        raise CheckpointError(f"{p / CONFIG_FILE}: no `model` node; not a behavior_lab training config")
    norm_stats = NormStats.load(p)
    if inference_overrides is not None and inference_overrides.get("inpainting") is not None:
        base = cfg.get("innovation") or OmegaConf.create({})
        cfg.innovation = OmegaConf.merge(base, {"inpainting": inference_overrides["inpainting"]})
    innovation = cfg.get("innovation")
    # The action correlation is not part of the weights (non-persistent buffers): load it from the
    # copied stats whenever correlated noise or correlation-aware inpainting may use it (spec §3, §9.3).
    chol = None
    if norm_stats.correlation_path is not None:
        chol = norm_stats.correlation_cholesky
    elif innovation is not None and OmegaConf.select(innovation, "correlated_noise.enabled", default=False):
        raise CheckpointError(
            f"{p}: the model samples correlated noise but the checkpoint has no action_correlation.npz"
        )
    model = build_model(cfg.model, innovation, correlation_cholesky=chol)
    state = load_file(str(p / WEIGHTS_FILE), device="cpu")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{p / WEIGHTS_FILE} does not fit the model of {p / CONFIG_FILE}: {exc}") from exc
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        raise CheckpointError(
            f"{p / WEIGHTS_FILE} does not match the model built from {p / CONFIG_FILE}: "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    dev = torch.device(device if device not in (None, "auto") else ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    return model, norm_stats, cfg
