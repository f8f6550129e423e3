"""`build_model`: the one place a PiBehavior is constructed from the composed Hydra config."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch

from behavior_lab.models.config import ModelConfig
from behavior_lab.models.innovation_config import InnovationConfig
from behavior_lab.models.pi_behavior import PiBehavior


def _plain(node: Any) -> Any:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(node, DictConfig):
            return OmegaConf.to_container(node, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return node


def build_model(model: Mapping[str, Any] | ModelConfig, innovation: Mapping[str, Any] | InnovationConfig | None = None,
                correlation_cholesky=None, device: str | torch.device | None = None) -> PiBehavior:
    """model: the composed `model` node (conf/model/<preset>.yaml) or a ModelConfig;
    innovation: the composed `innovation` node (absent innovations are off) or an InnovationConfig;
    correlation_cholesky: (H·D, H·D) factor from NormStats (needed when correlated_noise is on)."""
    mcfg = model if isinstance(model, ModelConfig) else ModelConfig.from_dict(_plain(model))
    icfg = innovation if isinstance(innovation, InnovationConfig) else InnovationConfig.from_dict(_plain(innovation))
    with torch.device(device) if device is not None else contextlib.nullcontext():
        m = PiBehavior(mcfg, icfg)
    if correlation_cholesky is not None:
        m.set_action_correlation(correlation_cholesky)
    if mcfg.dtype != "float32":
        m.to(getattr(torch, mcfg.dtype))
    return m

