"""PiBehavior: Pi0.5 with the seed's innovations as composable components (docs/interfaces.md "Model").

Pure nn.Module. Every innovation is a component chosen at construction (`factory.build_model`);
an innovation that is off is an identity/empty module, so `forward` code has no toggles.

Training (`compute_loss`, spec §4.1): one VLM pass over [images, task, stage, state, FAST] gives the
final-normed prefix outputs (stage head, FAST head) and the per-layer post-RoPE K/V cache; the FAST
positions are dropped from the cache, the KV transform is applied once, and N flow samples are
folded into the action expert's query axis so all of them read that one cache.
Inference (`sample_actions`, spec §4.2/§9): one VLM pass, one KV transform, `num_steps` Euler steps
from t = 1 to 0 on the cached prefix, optional soft inpainting of kept actions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from behavior_lab.data import schema
from behavior_lab.innovations.correlated_noise import build_noise
from behavior_lab.innovations.fast_aux import build_fast_aux
from behavior_lab.innovations.inpainting import Inpainter
from behavior_lab.innovations.kv_transform import DetachCache, IdentityKV, build_kv_transform
from behavior_lab.innovations.multi_sample_fm import sample_time
from behavior_lab.innovations.system2 import build_system2
from behavior_lab.innovations.task_conditioning import build_task_conditioning
from behavior_lab.models.config import ModelConfig
from behavior_lab.models.gemma_mot import MixtureOfTransformers, PrefixCache, sincos_embedding
from behavior_lab.models.innovation_config import InnovationConfig
from behavior_lab.models.prefix import ContinuousStateEncoder, DiscreteStateEncoder, Prefix, assemble_prefix
from behavior_lab.models.vision import build_vision_tower


class PiBehavior(nn.Module):
    def __init__(self, cfg: ModelConfig, innovations: InnovationConfig | None = None):
        super().__init__()
        inn = innovations or InnovationConfig()
        self.cfg, self.innovations = cfg, inn
        W, We = cfg.vlm.width, cfg.expert.width
        H, D = cfg.action_horizon, cfg.action_dim
        self.vision = build_vision_tower(cfg.vision, W, cfg.num_cameras)
        self.backbone = MixtureOfTransformers(cfg.vlm, cfg.expert, cfg.vocab_size)
        self.task = build_task_conditioning(inn.task_embeddings, W)
        self.stage_tokens, self.stage_head = build_system2(inn.system2, W)
        self.state_encoder = (
            DiscreteStateEncoder(cfg.state.num_bins) if cfg.state.mode == "discrete" else ContinuousStateEncoder(D, W)
        )
        self.task_info_proj = nn.Linear(cfg.task_info_dim, W) if cfg.task_info_dim else None
        self.fast = build_fast_aux(inn.fast_aux, W)
        self.noise = build_noise(inn.correlated_noise, H, D)
        self.kv_transform = build_kv_transform(inn.kv_transform, cfg.vlm.depth, cfg.vlm.num_kv_heads, cfg.vlm.head_dim)
        self.insulation = DetachCache() if cfg.flow.knowledge_insulation else IdentityKV()
        self.inpainter = Inpainter(inn.inpainting, H, D)
        self.num_samples = inn.multi_sample_fm.samples_per_pass
        # Pi0.5 heads (spec §1.4, §4.1); names as in pi05_base
        self.action_in_proj = nn.Linear(D, We)
        self.action_out_proj = nn.Linear(We, D)
        self.time_mlp_in = nn.Linear(We, We)
        self.time_mlp_out = nn.Linear(We, We)

    # ---------------------------------------------------------------- stats-derived buffers
    def set_action_correlation(self, cholesky) -> None:
        """Load the (H·D)² Cholesky factor of the action-chunk correlation (spec §3.1) from the stats.
        Used by correlated noise (if on) and by correlation-aware inpainting."""
        self.noise.set_cholesky(cholesky)
        self.inpainter.set_cholesky(cholesky)

    # ---------------------------------------------------------------- prefix
    def embed_prefix(self, batch: dict, with_fast: bool) -> Prefix:
        images = batch["images"]
        B = images.shape[0]
        img = self.vision(images)  # (B, C·n, W)
        n_per_cam = img.shape[1] // self.cfg.num_cameras
        img_valid = batch.get("image_mask", torch.ones(B, self.cfg.num_cameras, dtype=torch.bool, device=img.device))
        img_valid = img_valid.bool().repeat_interleave(n_per_cam, dim=1)
        embed = self.backbone.vlm.embed
        task = self.task(batch, embed)
        stage = batch.get("stage", torch.zeros(B, dtype=torch.long, device=img.device))
        stage_tok = self.stage_tokens(task.task_vector, batch["task_id"], stage, batch.get("num_stages")).to(img.dtype)
        state_tok = self.state_encoder(batch["state"], embed).to(img.dtype)
        ones = lambda t: torch.ones(B, t.shape[1], dtype=torch.bool, device=img.device)  # noqa: E731
        fast = self.fast.embed(batch, img) if with_fast else (img[:, :0], img_valid[:, :0])
        blocks = [
            (img, img_valid, "zeros"),
            (task.tokens.to(img.dtype), task.valid, "zeros"),
            (stage_tok, ones(stage_tok), "first"),  # spec §1.5: stage tokens open group 1
            (state_tok, ones(state_tok), "zeros"),
        ]
        if self.task_info_proj is not None:
            info_tok = self.embed_task_info(batch).to(img.dtype)
            blocks.append((info_tok, ones(info_tok), "zeros"))
        return assemble_prefix(
            blocks,
            head_index=img.shape[1] + task.head_index,
            fast=fast,
        )

    def embed_task_info(self, batch: dict) -> torch.Tensor:
        """Privileged observation mode (DESIGN §8 lever 5): (B, D) task_info -> one (B, 1, W) token."""
        info = batch.get("task_info")
        want = self.cfg.task_info_dim
        if info is None:
            raise KeyError(f"this model was built with task_info_dim={want} (privileged observation mode) "
                           "and needs batch['task_info']; the observation or dataset carries none")
        if info.shape[-1] != want:
            raise ValueError(f"batch['task_info'] has width {info.shape[-1]}; this model expects {want}")
        return self.task_info_proj(info.to(self.task_info_proj.weight.dtype))[:, None]

    def encode_prefix(self, batch: dict, with_fast: bool) -> tuple[Prefix, torch.Tensor, PrefixCache]:
        """One VLM pass: (prefix layout, final-normed outputs (B,S,W), K/V cache of the non-FAST part)."""
        prefix = self.embed_prefix(batch, with_fast)
        out, cache = self.backbone.prefix_forward(prefix.embeds, prefix.mask, prefix.positions, prefix.valid)
        return prefix, out, cache.truncate(prefix.nonfast_len)

    # ---------------------------------------------------------------- action expert
    def time_condition(self, t: torch.Tensor) -> torch.Tensor:
        """t (...) -> adaRMS condition (..., We): swish(W2·swish(W1·sincos(t))) (spec §4.1)."""
        emb = sincos_embedding(t, self.cfg.expert.width, 4e-3, 4.0).to(self.time_mlp_in.weight.dtype)
        return F.silu(self.time_mlp_out(F.silu(self.time_mlp_in(emb))))

    def velocity(self, cache: PrefixCache, prefix: Prefix, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t (B, N, H, D), t (B, N) -> v̂ (B, N, H, D); the N samples share `cache`."""
        B, N, H, D = x_t.shape
        tokens = self.action_in_proj(x_t.to(self.action_in_proj.weight.dtype)).reshape(B, N * H, -1)
        cond = self.time_condition(t)  # (B, N, We): one condition per sample, broadcast over its H tokens
        out = self.backbone.suffix_forward(tokens, cond, cache, prefix.suffix_positions(H, N), N)
        return self.action_out_proj(out).reshape(B, N, H, D).float()

    # ---------------------------------------------------------------- training
    def compute_loss(self, batch: dict, noise: torch.Tensor | None = None, time: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """spec §4.1. noise (B, N, H, D) or (B, H, D) when N = 1; time (B, N) or (B,). Drawn when None."""
        actions = batch["actions"].float()  # (B, H, D) normalised, padded
        B, H, D = actions.shape
        N, dev = self.num_samples, actions.device
        prefix, out, cache = self.encode_prefix(batch, with_fast=True)
        metrics: dict[str, torch.Tensor] = {}
        head_out = out[torch.arange(B, device=dev), prefix.head_index]  # (B, W) at the base task token
        metrics.update(self.stage_head.losses(self.stage_head.logits(head_out, batch), batch))
        metrics.update(self.fast.losses(out[:, prefix.nonfast_len :], batch))
        cache = self.kv_transform(self.insulation(cache))  # once, shared by all N samples (spec §4.1 step 4)

        if noise is None:
            noise = self.noise.sample((B, N, H, D), generator=generator, device=dev)
        noise = noise.reshape(B, N, H, D).to(dev).float()
        if time is None:
            f = self.cfg.flow
            time = sample_time((B, N), f.time_alpha, f.time_beta, f.time_min, generator=generator, device=dev)
        t = time.reshape(B, N).to(dev).float()
        a = actions[:, None]
        x_t = t[..., None, None] * noise + (1.0 - t[..., None, None]) * a  # t = 1 is noise
        u_t = noise - a
        err = (self.velocity(cache, prefix, x_t, t) - u_t).pow(2)  # (B, N, H, D)
        metrics["action_loss_per_dim"] = err[..., : schema.ACTION_DIM].mean(dim=(0, 1, 2)).detach()
        if self.cfg.flow.gripper_loss_weight != 1.0:
            w = torch.ones(D, device=dev)
            w[[schema.LEFT_GRIPPER_DIM, schema.RIGHT_GRIPPER_DIM]] = self.cfg.flow.gripper_loss_weight
            err = err * w

        dims = D if self.cfg.flow.include_padded_dims else schema.ACTION_DIM
        action_loss = err[..., :dims].mean(dim=(1, 2, 3))  # (B,)
        metrics["action_loss"] = action_loss.mean()
        total = metrics["action_loss"]
        for key in [k for k in metrics if k.startswith("weighted/")]:
            total = total + metrics.pop(key)
        metrics["loss"] = total
        return metrics

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def sample_actions(self, batch: dict, num_steps: int | None = None, noise: torch.Tensor | None = None,
                       initial_actions: torch.Tensor | None = None, generator: torch.Generator | None = None) -> dict:
        """Euler from t = 1 to 0 (spec §4.2) on one cached prefix pass; FAST tokens are never used here.

        noise (B, H, D) is x_1; initial_actions (B, k, D) normalised kept actions for soft inpainting.
        Returns {"actions": (B, H, D) normalised, "stage_logits": (B, 15) when system2 is on}.
        """
        steps = num_steps or self.cfg.flow.num_steps
        B = batch["images"].shape[0]
        H, D = self.cfg.action_horizon, self.cfg.action_dim
        prefix, out, cache = self.encode_prefix(batch, with_fast=False)
        cache = self.kv_transform(cache)
        dev = out.device
        x = (self.noise.sample((B, H, D), generator=generator, device=dev) if noise is None else noise.to(dev)).float()
        plan = self.inpainter.plan(initial_actions.to(dev) if initial_actions is not None else None, x, steps)
        dt = -1.0 / steps
        for i in range(steps):
            t = 1.0 - i / steps  # evaluates t = 1.00, 0.95, …, 0.05 for 20 steps
            v = self.velocity(cache, prefix, x[:, None], torch.full((B, 1), t, device=dev))[:, 0]
            x = x + dt * v
            if plan is not None:
                x = plan.apply(x, i + 1, 1.0 - (i + 1) / steps)
        result = {"actions": x}
        logits = self.stage_head.logits(out[torch.arange(B, device=dev), prefix.head_index], batch)
        if logits is not None:
            result["stage_logits"] = logits
        return result

    # ---------------------------------------------------------------- reference joint pass
    def joint_velocity(self, batch: dict, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """openpi's single joint pass over [prefix; suffix] (no cache, no KV transform); x_t (B,H,D),
        t (B,). Reference for the cached path; not used in training."""
        prefix = self.embed_prefix(batch, with_fast=False)
        B, H, _ = x_t.shape
        S = prefix.embeds.shape[1]
        suffix = self.action_in_proj(x_t.to(self.action_in_proj.weight.dtype))
        cond = self.time_condition(t)[:, None]
        valid = torch.cat([prefix.valid, torch.ones(B, H, dtype=torch.bool, device=x_t.device)], 1)
        mask = torch.zeros(B, S + H, S + H, dtype=torch.bool, device=x_t.device)
        mask[:, :S, :S] = prefix.mask
        mask[:, S:] = valid[:, None, :]  # actions see every valid prefix token and each other
        positions = torch.cat([prefix.positions, prefix.suffix_positions(H)], 1)
        _, out = self.backbone.joint_forward(prefix.embeds, suffix, cond, mask, positions)
        return self.action_out_proj(out).float()
