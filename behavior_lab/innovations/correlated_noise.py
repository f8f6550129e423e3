"""Correlated flow-matching noise (innovation `correlated_noise`, spec §3).

on:  ε = reshape(z·L_βᵀ, [.., H, D]), z ~ N(0, I_{H·D}), L_β = chol(β·Σ + (1−β)·I), Σ = L·Lᵀ the
     960×960 action-chunk correlation from the stats (spec §3.2-3.3, β = 0.5).
off: ε ~ N(0, I) (plain Pi0.5).
L comes from the stats (`NormStats.correlation_cholesky`) through `set_cholesky`; L_β is a
non-persistent buffer, re-derived on load like the seed's nnx.Intermediate (spec §3.2).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class CorrelatedNoiseConfig:
    enabled: bool = False
    beta: float = 0.5  # spec §3.2: correlation_beta

    def __post_init__(self):
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"correlated_noise.beta={self.beta} must lie in [0, 1]")


def shrunk_covariance(cholesky: torch.Tensor, beta: float) -> torch.Tensor:
    """Σ_β = β·L·Lᵀ + (1−β)·I in float64 (spec §3.2)."""
    L = cholesky.double()
    eye = torch.eye(L.shape[0], dtype=torch.float64, device=L.device)
    return beta * (L @ L.T) + (1.0 - beta) * eye


def shrunk_cholesky(cholesky: torch.Tensor, beta: float) -> torch.Tensor:
    if beta == 0.0:  # exact identity, so β = 0 reproduces i.i.d. noise bit for bit
        return torch.eye(cholesky.shape[0], dtype=torch.float32, device=cholesky.device)
    return torch.linalg.cholesky(shrunk_covariance(cholesky, beta)).float()


def standard_normal(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


class IidNoise(nn.Module):
    def set_cholesky(self, cholesky) -> None:  # noqa: ARG002
        """i.i.d. noise ignores the action correlation (it may still feed inpainting, spec §3 "Ablation")."""

    def sample(self, shape, generator=None, device=None) -> torch.Tensor:
        return standard_normal(shape, generator, device)


class CorrelatedNoise(nn.Module):
    def __init__(self, horizon: int, dim: int, beta: float):
        super().__init__()
        self.horizon, self.dim, self.beta = horizon, dim, beta
        self.register_buffer("chol_beta", torch.empty(0), persistent=False)

    def _apply(self, fn, recurse=True):
        """Follow the model's device but stay fp32 when the model is cast to bf16."""
        keep = self.chol_beta
        super()._apply(fn, recurse)
        self.chol_beta = keep.to(self.chol_beta.device)
        return self

    def set_cholesky(self, cholesky) -> None:
        L = torch.as_tensor(cholesky, dtype=torch.float32)
        n = self.horizon * self.dim
        if L.shape != (n, n):
            raise ValueError(
                f"action correlation Cholesky factor has shape {tuple(L.shape)}; expected ({n}, {n}) "
                f"= (H·D)² for H={self.horizon}, D={self.dim} (spec §3.1, flat index t·D + d)"
            )
        self.chol_beta = shrunk_cholesky(L, self.beta).to(self.chol_beta.device)

    def sample(self, shape, generator=None, device=None) -> torch.Tensor:
        if self.chol_beta.numel() == 0:
            raise RuntimeError(
                "correlated_noise is on but no action correlation was loaded: pass correlation_cholesky= to "
                "build_model or call model.set_action_correlation(norm_stats.correlation_cholesky) "
                "(written by `behavior-lab stats`)"
            )
        *lead, H, D = shape
        if (H, D) != (self.horizon, self.dim):
            raise ValueError(f"noise shape {tuple(shape)} does not end in (H, D) = ({self.horizon}, {self.dim})")
        z = standard_normal((*lead, H * D), generator, device or self.chol_beta.device)
        return (z @ self.chol_beta.T).reshape(*lead, H, D)


def build_noise(cfg: CorrelatedNoiseConfig, horizon: int, dim: int) -> nn.Module:
    return CorrelatedNoise(horizon, dim, cfg.beta) if cfg.enabled else IidNoise()
