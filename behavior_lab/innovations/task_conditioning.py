"""Task conditioning (innovation `task_embeddings`, spec §2).

on:  one learned vector per BEHAVIOR task id (nn.Embed(50, W), not scaled by sqrt(W)) is the
     prefix's "base task token" in attention group 0 with the images.
off: plain Pi0.5: the task is a tokenised text prompt (batch["prompt_tokens"], batch["prompt_mask"])
     embedded with the VLM's token embedder (scaled by sqrt(W)), also in group 0.
Both return `TaskTokens`; the stage head reads the token at `head_index` (the base task token, or the
last valid prompt token), which sits in group 0 and therefore never sees the stage input (spec §1.5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class TaskEmbeddingsConfig:
    enabled: bool = False
    num_tasks: int = 50  # spec §2: PiBehaviorConfig.num_tasks


@dataclasses.dataclass
class TaskTokens:
    tokens: torch.Tensor  # (B, n, W)
    valid: torch.Tensor  # (B, n) bool
    task_vector: torch.Tensor  # (B, W): e_task of spec §6.3 (fed to the stage-token fusion)
    head_index: torch.Tensor  # (B,) index within `tokens` the stage head reads


class TaskEmbeddingConditioning(nn.Module):
    def __init__(self, num_tasks: int, width: int):
        super().__init__()
        self.task_embeddings = nn.Embedding(num_tasks, width)
        # spec §1.6: flax nnx.Embed default init, std = 1/sqrt(features)
        nn.init.normal_(self.task_embeddings.weight, std=width**-0.5)

    def forward(self, batch: dict, embed_tokens: Callable[[torch.Tensor], torch.Tensor]) -> TaskTokens:  # noqa: ARG002
        task_id = batch["task_id"].long().reshape(-1)
        checkable = task_id.device.type != "meta"  # meta tensors (FLOP counting) have no values
        if checkable and (int(task_id.max()) >= self.task_embeddings.num_embeddings or int(task_id.min()) < 0):
            raise ValueError(
                f"task_id out of range 0..{self.task_embeddings.num_embeddings - 1}: {task_id.tolist()}"
            )
        e = self.task_embeddings(task_id)  # (B, W)
        B = e.shape[0]
        return TaskTokens(
            tokens=e[:, None],
            valid=torch.ones(B, 1, dtype=torch.bool, device=e.device),
            task_vector=e,
            head_index=torch.zeros(B, dtype=torch.long, device=e.device),
        )


class TextPromptConditioning(nn.Module):
    """Plain Pi0.5 prompt tokens. The stage-fusion task vector is the masked mean of the prompt
    embeddings (our choice: the seed has no text path, spec §2 "Ablation")."""

    def forward(self, batch: dict, embed_tokens: Callable[[torch.Tensor], torch.Tensor]) -> TaskTokens:
        if "prompt_tokens" not in batch:
            raise KeyError(
                "innovation task_embeddings=off conditions on text, so the batch needs 'prompt_tokens' (B, L) "
                "int64 and 'prompt_mask' (B, L) bool (see behavior_lab.models.tokenizer.ByteTokenizer)"
            )
        ids = batch["prompt_tokens"].long()
        valid = batch.get("prompt_mask", torch.ones_like(ids, dtype=torch.bool)).bool()
        tok = embed_tokens(ids)  # (B, L, W)
        w = valid.to(tok.dtype)[..., None]
        vec = (tok * w).sum(1) / w.sum(1).clamp_min(1.0)
        L = ids.shape[1]
        last = (valid.long() * torch.arange(L, device=ids.device)).amax(-1)
        return TaskTokens(tokens=tok, valid=valid, task_vector=vec, head_index=last)


def build_task_conditioning(cfg: TaskEmbeddingsConfig, width: int) -> nn.Module:
    return TaskEmbeddingConditioning(cfg.num_tasks, width) if cfg.enabled else TextPromptConditioning()
