"""Prefix layout, attention groups and RoPE positions (spec §1.4-1.5), and the state encoders (§1.2).

Prefix order: [image tokens | task tokens | stage tokens | state tokens | FAST tokens].
ar flags: images 0, task 0, stage tokens 1,0,0,0, state 0, FAST 1 each. A query may attend to a
valid key iff cumsum(ar)[key] ≤ cumsum(ar)[query] (openpi make_attn_mask). RoPE positions are
cumsum(valid) − 1; suffix positions continue after the valid non-FAST prefix.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


def make_attn_mask(valid: torch.Tensor, ar: torch.Tensor) -> torch.Tensor:
    """valid (B, S) bool, ar (B, S) or (S,) int -> (B, S, S) bool; True = query row may see key column.

    Padded queries see nothing; the finite mask value then gives them a harmless uniform softmax.
    """
    ar = ar.expand_as(valid).long()
    cum = torch.cumsum(ar, dim=-1)
    att = cum[:, None, :] <= cum[:, :, None]
    return att & valid[:, None, :] & valid[:, :, None]


def discretize_state(state: torch.Tensor, num_bins: int = 256) -> torch.Tensor:
    """spec §1.2: bin = clip(floor((x + 1)·num_bins/2), 0, num_bins − 1) on [−1, 1]
    (jnp.digitize with edges linspace(−1, 1, 257)[:−1], minus 1, clipped)."""
    return torch.floor((state.float() + 1.0) * (num_bins / 2.0)).clamp(0, num_bins - 1).long()


class DiscreteStateEncoder(nn.Module):
    """One token per state dimension: its bin id through the VLM token embedder (spec §1.2)."""

    def __init__(self, num_bins: int):
        super().__init__()
        self.num_bins = num_bins

    def forward(self, state: torch.Tensor, embed_tokens) -> torch.Tensor:
        return embed_tokens(discretize_state(state, self.num_bins))  # (B, D, W)


class ContinuousStateEncoder(nn.Module):
    """Alternative (spec §15 item 9): one token, Linear(D → W) of the normalised state."""

    def __init__(self, state_dim: int, width: int):
        super().__init__()
        self.state_proj = nn.Linear(state_dim, width)

    def forward(self, state: torch.Tensor, embed_tokens) -> torch.Tensor:  # noqa: ARG002
        return self.state_proj(state.to(self.state_proj.weight.dtype))[:, None]  # (B, 1, W)


@dataclasses.dataclass
class Prefix:
    embeds: torch.Tensor  # (B, S, W), S = P + M
    valid: torch.Tensor  # (B, S) bool
    ar: torch.Tensor  # (S,) long
    head_index: torch.Tensor  # (B,) absolute index the stage head reads
    nonfast_len: int  # P: FAST tokens occupy [P, S)

    @property
    def mask(self) -> torch.Tensor:
        return make_attn_mask(self.valid, self.ar)

    @property
    def positions(self) -> torch.Tensor:
        return torch.cumsum(self.valid.long(), dim=-1) - 1

    def suffix_positions(self, horizon: int, num_samples: int = 1) -> torch.Tensor:
        """(B, N·H): the valid non-FAST prefix count + 0..H−1, repeated per folded sample (spec §1.4)."""
        start = self.valid[:, : self.nonfast_len].long().sum(-1, keepdim=True)
        pos = start + torch.arange(horizon, device=start.device)[None]
        return pos.repeat(1, num_samples)


def assemble_prefix(blocks: list[tuple[torch.Tensor, torch.Tensor, list[int] | str]], head_index: torch.Tensor,
                    fast: tuple[torch.Tensor, torch.Tensor]) -> Prefix:
    """blocks: (embeds (B,n,W), valid (B,n), ar) in prefix order; ar is a list or "first" (1,0,0,…)
    or "zeros"; FAST embeds/valid go last with ar = 1 each."""
    embeds, valids, ars = [], [], []
    device = head_index.device
    for e, v, ar in blocks:
        n = e.shape[1]
        if ar == "zeros":
            ar = [0] * n
        elif ar == "first":
            ar = [1] + [0] * (n - 1) if n else []
        embeds.append(e)
        valids.append(v)
        ars.append(torch.tensor(ar, dtype=torch.long, device=device))
    nonfast = sum(e.shape[1] for e in embeds)
    fe, fv = fast
    embeds.append(fe)
    valids.append(fv)
    ars.append(torch.ones(fe.shape[1], dtype=torch.long, device=device))
    return Prefix(torch.cat(embeds, 1), torch.cat(valids, 1), torch.cat(ars), head_index, nonfast)
