"""Gemma mixture of transformers: a VLM expert and an action expert sharing one attention per layer.

Built only from transformers' leaf modules (GemmaAttention projections, GemmaMLP, GemmaRMSNorm,
GemmaRotaryEmbedding, apply_rotary_pos_emb); the layer loop, the attention and adaRMSNorm are ours
(ml-stack-measurements.md §2.2-2.4: everything above leaf level changed within transformers 5.x).
State-dict names follow HF Gemma (`layers.N.self_attn.q_proj.weight`, ...) so pi05_base loads 1:1.

Three passes share the same layer code:
- `prefix_forward`: VLM only; returns final-normed outputs and the per-layer post-RoPE K/V cache.
- `suffix_forward`: action expert only; attends to a (possibly transformed) prefix cache. N flow
  samples are folded into the query axis so the cache is used as is, never copied (spec §4.1).
- `joint_forward`: both experts in one attention per layer (openpi's training pass); used to check
  that cache + suffix equals the joint pass.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GemmaConfig
from transformers.models.gemma.modeling_gemma import (
    GemmaAttention,
    GemmaMLP,
    GemmaRMSNorm,
    GemmaRotaryEmbedding,
    apply_rotary_pos_emb,
)

from behavior_lab.models.config import ExpertConfig

# spec §1.1 / §1.5: masked logits get a finite big negative, not -inf, so fully masked query rows
# (padded FAST tokens) give a harmless uniform softmax instead of NaN.
MASK_VALUE = -2.3819763e38


def hf_gemma_config(cfg: ExpertConfig, vocab_size: int = 1) -> GemmaConfig:
    return GemmaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.width,
        intermediate_size=cfg.mlp_dim,
        num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim,
        hidden_activation="gelu_pytorch_tanh",  # spec §1.1: GeGLU with tanh-approximated gelu
        hidden_act="gelu_pytorch_tanh",
        rms_norm_eps=cfg.rms_eps,
        rope_theta=cfg.rope_theta,
        attention_bias=False,
        pad_token_id=None,
        bos_token_id=None,
        eos_token_id=None,
    )


class RMSNorm(GemmaRMSNorm):
    """Gemma RMSNorm, x·rsqrt(mean x²+eps)·(1+w) (spec §1.1), with the adaRMS call signature."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):  # noqa: ARG002
        return super().forward(x), None


class AdaRMSNorm(nn.Module):
    """Time-conditioned RMSNorm of the action expert (spec §1.1).

    A zero-initialised Linear maps the condition to (scale, shift, gate); output = norm(x)·(1+scale)
    + shift, and the caller adds the residual as x + y·gate. Zero init of weight *and* bias makes the
    module start as a plain RMSNorm with gate 0 (flax Dense default; openpi's PyTorch port leaves
    the bias at nn.Linear's default, which breaks this when training from scratch).
    """

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.dense = nn.Linear(cond_dim, 3 * dim)
        nn.init.zeros_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor):
        # x: (B, T, D); cond: (B, C), (B, T, C), or (B, N, C) with T = N·H (one condition per folded
        # flow sample: modulations are computed per sample and broadcast over its H tokens)
        dtype = x.dtype
        B, T, Dm = x.shape
        mod = self.dense(cond.to(self.dense.weight.dtype))
        if mod.dim() == 2:
            mod = mod[:, None]
        G = mod.shape[1]
        if T % G:
            raise ValueError(f"adaRMS condition has {G} rows, which does not divide {T} tokens")
        xf = x.float().view(B, G, T // G, Dm)
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        scale, shift, gate = mod.float()[:, :, None].chunk(3, dim=-1)  # (B, G, 1, D) each
        y = (normed * (1.0 + scale) + shift).view(B, T, Dm).to(dtype)
        if G != T:
            gate = gate.expand(B, G, T // G, Dm)
        return y, gate.reshape(B, T, Dm).to(dtype)


class GemmaBlock(nn.Module):
    """One Gemma decoder layer's weights; the joint attention happens outside (MoT)."""

    def __init__(self, cfg: ExpertConfig, layer_idx: int, cond_dim: int | None):
        super().__init__()
        hf = hf_gemma_config(cfg)
        self.self_attn = GemmaAttention(hf, layer_idx)  # only its q/k/v/o projections are used
        self.mlp = GemmaMLP(hf)
        if cond_dim is None:
            self.input_layernorm = RMSNorm(cfg.width, eps=cfg.rms_eps)
            self.post_attention_layernorm = RMSNorm(cfg.width, eps=cfg.rms_eps)
        else:
            self.input_layernorm = AdaRMSNorm(cfg.width, cond_dim, eps=cfg.rms_eps)
            self.post_attention_layernorm = AdaRMSNorm(cfg.width, cond_dim, eps=cfg.rms_eps)
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim

    def qkv(self, x: torch.Tensor, cond: torch.Tensor | None):
        """x (B,T,D) -> q (B,H,T,hd), k/v (B,KV,T,hd), residual gate (None for plain RMSNorm)."""
        h, gate = self.input_layernorm(x, cond)
        B, T, _ = h.shape
        a = self.self_attn
        q = a.q_proj(h).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        k = a.k_proj(h).view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = a.v_proj(h).view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)
        return q, k, v, gate

    def finish(self, x, attn_out, gate, cond):
        """o_proj + (gated) residual, then pre-norm GeGLU MLP + (gated) residual."""
        out = self.self_attn.o_proj(attn_out.to(x.dtype))
        x = x + out if gate is None else x + out * gate
        h, gate2 = self.post_attention_layernorm(x, cond)
        out = self.mlp(h)
        return x + out if gate2 is None else x + out * gate2


class GemmaStack(nn.Module):
    """Layers + final norm of one expert (+ token embedder for the VLM)."""

    def __init__(self, cfg: ExpertConfig, cond_dim: int | None, vocab_size: int | None = None):
        super().__init__()
        self.cfg = cfg
        if vocab_size is not None:
            self.embed_tokens = nn.Embedding(vocab_size, cfg.width)
        self.layers = nn.ModuleList(GemmaBlock(cfg, i, cond_dim) for i in range(cfg.depth))
        if cond_dim is None:
            self.norm = RMSNorm(cfg.width, eps=cfg.rms_eps)
        else:
            self.norm = AdaRMSNorm(cfg.width, cond_dim, cfg.rms_eps)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        # spec §1.1: PaliGemma embedder rows are scaled by sqrt(width)
        e = self.embed_tokens(ids)
        return e * torch.tensor(self.cfg.width**0.5, dtype=e.dtype)


@dataclasses.dataclass
class PrefixCache:
    """Per-layer post-RoPE prefix K/V: keys/values (L, B, KV, S, hd); `valid` (B, S) key mask."""

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor

    def truncate(self, length: int) -> PrefixCache:
        return PrefixCache(self.keys[..., :length, :], self.values[..., :length, :], self.valid[:, :length])


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """(B,T,S) bool, True = may attend -> (B,1,T,S) fp32 additive bias with the finite mask value."""
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill_(~mask, MASK_VALUE)[:, None]


def masked_attention(q, k, v, bias, scaling: float) -> torch.Tensor:
    """MQA/GQA attention in fp32 (spec §1.1) with an additive finite mask (spec §1.5).

    q (B,H,T,hd); k, v (B,KV,S,hd); bias (B,1,T,S) from `attention_bias`. Returns (B,T,H·hd) fp32.
    A fully masked query row gets a uniform softmax (finite mask value), never NaN.
    """
    out = F.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), attn_mask=bias, scale=scaling, enable_gqa=True
    )  # (B, H, T, hd)
    B, H, T, hd = out.shape
    return out.transpose(1, 2).reshape(B, T, H * hd)


def suffix_attention(q, k_suf, v_suf, k_pre, v_pre, pre_valid, num_samples: int, scaling: float):
    """Attention of N folded flow samples' action tokens over a shared prefix cache.

    q (B,H,N·T,hd); k_suf/v_suf (B,KV,N·T,hd); k_pre/v_pre (B,KV,S,hd); pre_valid (B,S).
    Sample n's queries see every valid prefix key and all T action keys of sample n (spec §1.5:
    actions see groups 0 and 1 and each other bidirectionally), never another sample's tokens.
    The samples become SDPA batch rows over the one cache (the VLM ran once). SDPA needs the K/V
    rows materialised per sample: cheap for the tiny presets, and for pi05 (S = 805, 18 layers) about
    N·B·S·hd·2 floats per layer kept for backward; on CPU this measured 3.4x faster than an einsum
    over the shared cache. Every row has T valid keys, so a boolean mask cannot produce NaN here.
    """
    B, H, NT, hd = q.shape
    KV, S, n = k_pre.shape[1], k_pre.shape[2], num_samples
    T = NT // n

    def rows(x, heads):  # (B, h, N·T, hd) -> (B·N, h, T, hd)
        return x.view(B, heads, n, T, hd).transpose(1, 2).reshape(B * n, heads, T, hd)

    def shared(x):  # (B, KV, S, hd) -> (B·N, KV, S, hd)
        return x[:, None].expand(B, n, KV, S, hd).reshape(B * n, KV, S, hd)

    k = torch.cat([shared(k_pre), rows(k_suf, KV)], dim=2).float()
    v = torch.cat([shared(v_pre), rows(v_suf, KV)], dim=2).float()
    keep = torch.cat([pre_valid[:, None].expand(B, n, S), pre_valid.new_ones(B, n, T)], dim=-1)
    out = F.scaled_dot_product_attention(
        rows(q, H).float(), k, v, attn_mask=keep.reshape(B * n, 1, 1, S + T), scale=scaling, enable_gqa=True
    )  # (B·N, H, T, hd)
    return out.view(B, n, H, T, hd).permute(0, 1, 3, 2, 4).reshape(B, NT, H * hd)


class MixtureOfTransformers(nn.Module):
    """VLM expert (plain RMSNorm, token embedder) + action expert (adaRMSNorm on the time condition)."""

    def __init__(self, vlm: ExpertConfig, expert: ExpertConfig, vocab_size: int):
        super().__init__()
        self.vlm = GemmaStack(vlm, cond_dim=None, vocab_size=vocab_size)
        self.expert = GemmaStack(expert, cond_dim=expert.width)
        self.rotary = GemmaRotaryEmbedding(hf_gemma_config(vlm))  # no parameters; shared by both
        self.scaling = vlm.head_dim**-0.5  # spec §1.1: queries scaled by head_dim^-0.5
        self.depth = vlm.depth

    def _rope(self, q, k, positions):
        cos, sin = self.rotary(q, positions)
        return apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)

    def prefix_forward(self, x, mask, positions, valid):
        """x (B,S,Wv) embedded prefix; mask (B,S,S); positions (B,S); valid (B,S).

        Returns final-normed outputs (B,S,Wv) and the PrefixCache of all S tokens.
        """
        keys, values = [], []
        bias = attention_bias(mask)
        for layer in self.vlm.layers:
            q, k, v, gate = layer.qkv(x, None)
            q, k = self._rope(q, k, positions)
            keys.append(k)
            values.append(v)
            x = layer.finish(x, masked_attention(q, k, v, bias, self.scaling), gate, None)
        out, _ = self.vlm.norm(x, None)
        return out, PrefixCache(torch.stack(keys), torch.stack(values), valid)

    def suffix_forward(self, x, cond, cache: PrefixCache, positions, num_samples: int = 1):
        """x (B,N·T,We) action tokens of N folded samples; cond (B,N·T,We) per-token adaRMS condition;
        positions (B,N·T). Returns final-normed outputs (B,N·T,We)."""
        for i, layer in enumerate(self.expert.layers):
            q, k, v, gate = layer.qkv(x, cond)
            q, k = self._rope(q, k, positions)
            att = suffix_attention(q, k, v, cache.keys[i], cache.values[i], cache.valid, num_samples, self.scaling)
            x = layer.finish(x, att, gate, cond)
        out, _ = self.expert.norm(x, cond)
        return out

    def joint_forward(self, prefix, suffix, cond, mask, positions):
        """One attention per layer over [prefix; suffix] with separate weights per expert (openpi's
        training pass, no KV transform). mask (B,S+T,S+T); positions (B,S+T)."""
        S = prefix.shape[1]
        bias = attention_bias(mask)
        for lv, le in zip(self.vlm.layers, self.expert.layers, strict=True):
            qv, kv, vv, gv = lv.qkv(prefix, None)
            qe, ke, ve, ge = le.qkv(suffix, cond)
            q, k = self._rope(torch.cat([qv, qe], 2), torch.cat([kv, ke], 2), positions)
            att = masked_attention(q, k, torch.cat([vv, ve], 2), bias, self.scaling)
            prefix = lv.finish(prefix, att[:, :S], gv, None)
            suffix = le.finish(suffix, att[:, S:], ge, cond)
        return self.vlm.norm(prefix, None)[0], self.expert.norm(suffix, cond)[0]


def sincos_embedding(x: torch.Tensor, dim: int, min_period: float, max_period: float) -> torch.Tensor:
    """openpi posemb_sincos: [sin(2πx/p_i), cos(2πx/p_i)], p_i = min·(max/min)^(i/(dim/2−1)) (spec §4.1)."""
    if dim % 2:
        raise ValueError(f"sincos embedding dimension must be even, got {dim}")
    frac = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64, device=x.device)
    period = min_period * (max_period / min_period) ** frac
    ang = x.double()[..., None] * (2 * torch.pi / period)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1).float()

