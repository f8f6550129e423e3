"""FAST auxiliary loss, model side (innovation `fast_aux`, spec §7.3).

on:  teacher-forced FAST tokens [BOS=0, y_0..y_{M−2}] are embedded with a separate Embed(1024, W)
     and appended after the state tokens with ar = 1 each (causal, last in the prefix, so the K/V of
     the non-FAST prefix is unchanged, spec §1.5); logits_j = Linear(W → 1024)(prefix_out at FAST
     position j); CE averaged over valid tokens per example, batch mean × 0.05; argmax accuracy.
     Training only: the inference prefix never contains FAST tokens.
off: no FAST tokens, no loss (plain Pi0.5). FAST tokens in a batch are then ignored.
Inputs: batch["fast_tokens"] (B, M) int64 and batch["fast_mask"] (B, M) bool (data issue 7).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class FastAuxConfig:
    enabled: bool = False
    loss_weight: float = 0.05  # spec §7.3
    vocab_size: int = 1024  # spec §7.1
    max_tokens: int = 200  # spec §7.2


class FastAux(nn.Module):
    def __init__(self, cfg: FastAuxConfig, width: int):
        super().__init__()
        self.fast_token_embedding = nn.Embedding(cfg.vocab_size, width)
        nn.init.normal_(self.fast_token_embedding.weight, std=width**-0.5)  # spec §1.6: nnx.Embed init
        self.fast_token_proj = nn.Linear(width, cfg.vocab_size)
        nn.init.trunc_normal_(self.fast_token_proj.weight, std=width**-0.5)  # LeCun normal
        nn.init.zeros_(self.fast_token_proj.bias)
        self.cfg = cfg

    @staticmethod
    def trimmed(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Drop trailing columns that are padding for every example: exact (FAST is causal and last,
        padded targets carry no loss) and it saves most of the 200-token FAST block on short chunks."""
        y, m = batch["fast_tokens"].long(), batch["fast_mask"].bool()
        if m.device.type == "meta":  # FLOP counting on the meta device: no values to trim by
            return y, m
        keep = int(m.long().sum(1).max()) if m.numel() else 0
        return y[:, : max(keep, 1)], m[:, : max(keep, 1)]

    def embed(self, batch: dict, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ARG002
        """(B, M, W) teacher-forcing inputs and their (B, M) validity."""
        if "fast_tokens" not in batch:
            raise KeyError(
                "innovation fast_aux=on needs batch['fast_tokens'] (B, M) and batch['fast_mask'] (B, M); "
                "configure the FAST tokenizer in the data pipeline (`behavior-lab stats` writes it)"
            )
        y, m = self.trimmed(batch)
        if y.device.type != "meta" and (int(y.max()) >= self.cfg.vocab_size or int(y.min()) < 0):
            raise ValueError(f"FAST token ids must lie in 0..{self.cfg.vocab_size - 1}")
        bos = torch.zeros_like(y[:, :1])  # spec §7.3: BOS = 0 (also the pad id)
        inp = torch.cat([bos, y[:, :-1]], dim=1)
        valid = torch.cat([torch.ones_like(m[:, :1]), m[:, :-1]], dim=1)
        return self.fast_token_embedding(inp).to(like.dtype), valid

    def losses(self, fast_out: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """fast_out (B, M, W): final-normed VLM outputs at the FAST positions."""
        y, m = self.trimmed(batch)
        logits = self.fast_token_proj(fast_out).float()  # (B, M, V)
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)  # (B, M)
        mf = m.float()
        ce = ((nll * mf).sum(1) / mf.sum(1).clamp_min(1.0)).mean()
        acc = ((logits.argmax(-1) == y).float() * mf).sum() / mf.sum().clamp_min(1.0)
        return {"fast_loss": ce, "fast_acc": acc.detach(), "weighted/fast_loss": self.cfg.loss_weight * ce}


class NoFast(nn.Module):
    def embed(self, batch: dict, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ARG002
        """Nothing to append: (B, 0, W) and (B, 0); `like` is any (B, n, W) prefix tensor."""
        return like[:, :0], torch.zeros(like.shape[0], 0, dtype=torch.bool, device=like.device)

    def losses(self, fast_out, batch) -> dict[str, torch.Tensor]:  # noqa: ARG002
        return {}


def build_fast_aux(cfg: FastAuxConfig, width: int) -> nn.Module:
    return FastAux(cfg, width) if cfg.enabled else NoFast()
