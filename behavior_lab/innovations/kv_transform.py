"""Learnable mixed-layer attention (innovation `kv_transform`, spec §5).

on:  action-expert layer l attends to K'_l = Σ_s A^K_{l,s}·K_s + b^K_l (and likewise V) over the
     post-RoPE prefix cache of all L VLM layers. A = I, b = 0 at init: a no-op, so pi05_base loads
     exactly. No normalisation or constraint; fp32, cast back to the cache dtype.
off: identity (layer l attends to VLM layer l).
Applied once per VLM pass, shared by all flow samples and all Euler steps.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from behavior_lab.models.gemma_mot import PrefixCache


@dataclasses.dataclass(frozen=True)
class KVTransformConfig:
    enabled: bool = False
    bias: bool = True  # spec §5: b^K, b^V ∈ R^{L×KV×hd}


class KVCacheTransform(nn.Module):
    def __init__(self, depth: int, num_kv_heads: int, head_dim: int, bias: bool = True):
        super().__init__()
        self.k_coeffs = nn.Parameter(torch.eye(depth))
        self.v_coeffs = nn.Parameter(torch.eye(depth))
        if bias:
            self.k_bias = nn.Parameter(torch.zeros(depth, num_kv_heads, head_dim))
            self.v_bias = nn.Parameter(torch.zeros(depth, num_kv_heads, head_dim))
        else:
            self.register_buffer("k_bias", torch.zeros(depth, num_kv_heads, head_dim), persistent=False)
            self.register_buffer("v_bias", torch.zeros(depth, num_kv_heads, head_dim), persistent=False)

    @staticmethod
    def _mix(x: torch.Tensor, coeffs: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        # x (L, B, KV, S, hd); coeffs (L, L); bias (L, KV, hd) broadcast over B and S
        y = torch.einsum("ls,sbkth->lbkth", coeffs.float(), x.float()) + bias.float()[:, None, :, None, :]
        return y.to(x.dtype)

    def forward(self, cache: PrefixCache) -> PrefixCache:
        return PrefixCache(
            self._mix(cache.keys, self.k_coeffs, self.k_bias),
            self._mix(cache.values, self.v_coeffs, self.v_bias),
            cache.valid,
        )


class IdentityKV(nn.Module):
    def forward(self, cache: PrefixCache) -> PrefixCache:
        return cache


class DetachCache(nn.Module):
    """Knowledge insulation (spec §4.1 step 4): the action loss does not train the VLM through the
    cache. Applied before the KV transform, so the transform's coefficients still train."""

    def forward(self, cache: PrefixCache) -> PrefixCache:
        return PrefixCache(cache.keys.detach(), cache.values.detach(), cache.valid)


def build_kv_transform(cfg: KVTransformConfig, depth: int, num_kv_heads: int, head_dim: int) -> nn.Module:
    return KVCacheTransform(depth, num_kv_heads, head_dim, cfg.bias) if cfg.enabled else IdentityKV()
