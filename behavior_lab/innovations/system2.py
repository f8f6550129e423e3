"""System 2 stage tracking, model side (innovation `system2`, spec §6.2-6.3).

on:  - 4 fused stage tokens after the base task token (ar flags 1,0,0,0: a new attention group with
       the state tokens; group 0 never sees them, spec §1.5);
     - a stage head Linear(W → 15) on the final-normed VLM output at the base task token, logits
       for stages ≥ S_task masked per task, 0.1-weighted cross-entropy (spec §6.2).
off: no stage tokens, no head, no stage loss (plain Pi0.5).
The stage input is the ground-truth label in training and the voted stage at inference
(batch["stage"]); voting lives in the policy runtime.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from behavior_lab.data import schema
from behavior_lab.models.gemma_mot import sincos_embedding


@dataclasses.dataclass(frozen=True)
class System2Config:
    enabled: bool = False
    loss_weight: float = 0.1  # spec §6.2: subtask_loss_weight
    fused_tokens: tuple[int, ...] = (1, 2, 3, 4)  # spec §6.3: which of tok1..tok4 enter the prefix
    max_stages: int = schema.MAX_NUM_STAGES  # spec §6.1: 15
    task_num_stages: tuple[int, ...] = schema.SEED_TASK_NUM_STAGES  # spec §6.1 table (sum 596)

    def __post_init__(self):
        bad = [t for t in self.fused_tokens if t not in (1, 2, 3, 4)]
        if bad or len(set(self.fused_tokens)) != len(self.fused_tokens):
            raise ValueError(f"system2.fused_tokens={self.fused_tokens}: pick distinct ids from 1..4")
        if max(self.task_num_stages) > self.max_stages:
            raise ValueError(f"system2.task_num_stages has a task with > max_stages={self.max_stages} stages")


def _lecun_linear(i: int, o: int) -> nn.Linear:
    """spec §1.6: flax nnx.Linear default = LeCun-normal kernel, zero bias."""
    lin = nn.Linear(i, o)
    nn.init.trunc_normal_(lin.weight, std=i**-0.5)
    nn.init.zeros_(lin.bias)
    return lin


class StageTokens(nn.Module):
    """tok1..tok4 of spec §6.3 from u = [e_task ; e_sin ; e_ts] ∈ R^{2W}."""

    def __init__(self, cfg: System2Config, width: int):
        super().__init__()
        if width % 4:
            raise ValueError(f"VLM width {width} must be divisible by 4 for the stage fusion (spec §6.3)")
        h = width // 2  # spec §6.3: e_sin, e_ts ∈ R^1024 for W = 2048
        self.half, self.fused = h, tuple(cfg.fused_tokens)
        table = torch.tensor(cfg.task_num_stages, dtype=torch.long)
        self.register_buffer("num_stages", table, persistent=False)
        self.register_buffer("offsets", torch.cumsum(table, 0) - table, persistent=False)  # 0, 5, 11, 26, ...
        self.task_stage_embeddings = nn.Embedding(sum(cfg.task_num_stages), h)  # 596 rows for the seed table
        nn.init.normal_(self.task_stage_embeddings.weight, std=h**-0.5)
        self.gate_sin = _lecun_linear(2 * width, h)
        self.gate_ts = _lecun_linear(2 * width, h)
        self.gate_task = _lecun_linear(2 * width, width)
        self.fusion_layer1 = _lecun_linear(2 * width, 2 * width)
        self.fusion_layer2 = _lecun_linear(2 * width, width)
        self.stage_projection = _lecun_linear(width, width)

    def forward(self, task_vector: torch.Tensor, task_id: torch.Tensor, stage: torch.Tensor,
                num_stages: torch.Tensor | None = None) -> torch.Tensor:
        """num_stages (B,): the data's S_task (batch["num_stages"]); defaults to the configured table.
        Embedding rows follow the configured table (seed: 596 rows); a stage beyond a task's table
        count reuses its last row, so set `task_num_stages` to the data's table if it exceeds the seed's."""
        task_id = task_id.long().reshape(-1)
        table_s = self.num_stages[task_id]
        s_task = table_s if num_stages is None else num_stages.long().reshape(-1)
        stage = torch.minimum(stage.long().reshape(-1).clamp_min(0), s_task - 1)
        s_hat = stage.float() / (s_task - 1).clamp_min(1).float()  # spec §6.3 step 1
        e_sin = sincos_embedding(s_hat, self.half, 1e-3, 1.0).to(task_vector.dtype)  # step 2
        row = self.offsets[task_id] + torch.minimum(stage, table_s - 1)
        e_ts = self.task_stage_embeddings(row)  # step 3
        u = torch.cat([task_vector, e_sin, e_ts], dim=-1)  # step 4
        g_sin, g_ts = torch.sigmoid(self.gate_sin(u)), torch.sigmoid(self.gate_ts(u))
        g_task = torch.sigmoid(self.gate_task(u))
        toks = {
            1: task_vector * g_task,
            2: self.fusion_layer2(F.relu(self.fusion_layer1(u))),
            3: self.stage_projection(torch.cat([e_sin * g_sin, e_ts * g_ts], dim=-1)),
            4: torch.cat([e_sin, e_ts], dim=-1),
        }
        return torch.stack([toks[i] for i in self.fused], dim=1)  # (B, n_fused, W)


class StageHead(nn.Module):
    def __init__(self, cfg: System2Config, width: int):
        super().__init__()
        self.stage_pred_from_vlm = _lecun_linear(width, cfg.max_stages)
        self.loss_weight = cfg.loss_weight
        self.register_buffer("num_stages", torch.tensor(cfg.task_num_stages, dtype=torch.long), persistent=False)

    def logits(self, head_out: torch.Tensor, batch: dict) -> torch.Tensor:
        """head_out (B, W) at the base task token -> (B, max_stages), stages ≥ S_task masked."""
        if "num_stages" in batch:
            s_task = batch["num_stages"].long().reshape(-1)
        else:
            s_task = self.num_stages[batch["task_id"].long().reshape(-1)]
        logits = self.stage_pred_from_vlm(head_out).float()
        idx = torch.arange(logits.shape[-1], device=logits.device)
        return logits.masked_fill(idx[None] >= s_task[:, None], torch.finfo(logits.dtype).min)

    def losses(self, logits: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        target = batch["stage"].long().reshape(-1)
        ce = F.cross_entropy(logits, target)
        acc = (logits.argmax(-1) == target).float().mean()
        return {"stage_loss": ce, "stage_acc": acc.detach(), "weighted/stage_loss": self.loss_weight * ce}


class NoStageTokens(nn.Module):
    def forward(self, task_vector: torch.Tensor, task_id: torch.Tensor, stage: torch.Tensor,  # noqa: ARG002
                num_stages: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        return task_vector.new_zeros(task_vector.shape[0], 0, task_vector.shape[-1])


class NoStageHead(nn.Module):
    def logits(self, head_out: torch.Tensor, batch: dict) -> None:  # noqa: ARG002
        return None

    def losses(self, logits, batch) -> dict[str, torch.Tensor]:  # noqa: ARG002
        return {}


def build_system2(cfg: System2Config, width: int) -> tuple[nn.Module, nn.Module]:
    if not cfg.enabled:
        return NoStageTokens(), NoStageHead()
    return StageTokens(cfg, width), StageHead(cfg, width)
