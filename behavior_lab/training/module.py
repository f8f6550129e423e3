"""Thin LightningModule around the pure ``PiBehavior`` model (DESIGN §3, STYLE habit 5).

The loss is exactly what ``model.compute_loss(batch)`` returns as ``loss`` (flow matching + 0.1·stage CE
+ 0.05·FAST CE, each term present only when its innovation is on; spec §4.1). This module adds only
training mechanics: AdamW + warm-up/cosine LambdaLR (spec §12.1), global-norm clipping at 1.0 done here
(not by the Trainer, so it works the same under FSDP), spec §14 metrics, and step-indexed randomness.

Randomness: every training step runs under a forked RNG seeded from (seed, global_step, rank) — the
PyTorch counterpart of the seed's ``fold_in(rng, step)`` (spec §12.1). A resumed run therefore draws the
same flow-matching noise/time as an uninterrupted one, whatever else touched the global RNG meanwhile
(dataloader iterators draw from it when created). Validation is seeded by batch index, so validation
losses are comparable across evaluations and do not perturb training.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Mapping

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import rank_zero_warn

from behavior_lab.data.schema import ACTION_DIM_NAMES
from behavior_lab.training.schedule import WarmupCosine, build_adamw, build_scheduler, schedule_change

# compute_loss keys (docs/interfaces.md) -> logged names (spec §14: subtask_* is our stage_*)
_SCALAR_KEYS = {
    "loss": "loss",
    "action_loss": "action_loss",
    "stage_loss": "stage_loss",
    "stage_acc": "stage_accuracy",
    "fast_loss": "fast_loss",
    "fast_acc": "fast_accuracy",
}


def step_seed(seed: int, step: int, rank: int = 0, stream: int = 0) -> int:
    """A 63-bit seed for (seed, step, rank, stream); distinct streams never share noise."""
    mixed = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step), int(rank), int(stream)])
    return int(mixed.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm as a plain tensor; an FSDP2 DTensor shard's partial norm is reduced across ranks."""
    n = t.float().norm()
    return n.full_tensor() if hasattr(n, "full_tensor") else n


def _numpy_state_to_plain(state: tuple) -> dict:
    """numpy's legacy RNG state as tensors/ints, so checkpoints load with torch.load(weights_only=True)."""
    name, keys, pos, has_gauss, cached = state
    return {"name": name, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _plain_to_numpy_state(d: dict) -> tuple:
    return (d["name"], d["keys"].numpy().astype(np.uint32), d["pos"], d["has_gauss"], d["cached"])


class PolicyModule(pl.LightningModule):
    def __init__(
        self,
        model: torch.nn.Module,
        optim: Mapping[str, Any] | None = None,
        seed: int = 0,
        log_group_grad_norms: bool = True,
    ) -> None:
        super().__init__()
        if not hasattr(model, "compute_loss"):
            raise TypeError(f"{type(model).__name__} has no compute_loss(batch) (docs/interfaces.md, Model)")
        self.model = model
        optim = dict(optim or {})
        self.schedule = WarmupCosine(
            peak_lr=float(optim.get("lr", 1e-4)),
            end_lr=float(optim.get("end_lr", 1e-5)),
            warmup_steps=int(optim.get("warmup_steps", 1_000)),
            decay_steps=int(optim.get("decay_steps", 20_000)),
        )
        self.betas = tuple(optim.get("betas", (0.9, 0.95)))
        self.eps = float(optim.get("eps", 1e-8))
        self.weight_decay = float(optim.get("weight_decay", 1e-10))
        clip = optim.get("grad_clip_norm", 1.0)
        self.grad_clip_norm = None if clip is None else float(clip)
        self.seed = int(seed)
        self.log_group_grad_norms = log_group_grad_norms

    # --- sharding ----------------------------------------------------------------------------------
    def configure_model(self) -> None:
        """trainer=fsdp (ModelParallelStrategy): shard one unit per MoT layer pair (training/fsdp.py)."""
        from lightning.pytorch.strategies import ModelParallelStrategy

        if not isinstance(self.trainer.strategy, ModelParallelStrategy) or getattr(self, "_sharded", False):
            return
        import torch.distributed.fsdp as fsdp

        from behavior_lab.training.fsdp import shard_layer_pairs

        bf16 = "bf16" in str(self.trainer.precision)
        mp = fsdp.MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32)
        shard_layer_pairs(self.model, mesh=self.device_mesh["data_parallel"], mp_policy=mp)
        self._sharded = True

    # --- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self):
        opt = build_adamw(
            self.model.parameters(),
            lr=self.schedule.peak_lr,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
        )
        sched = build_scheduler(opt, self.schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}

    def on_train_start(self) -> None:
        """A resumed run follows its config's schedule: Lightning restored the checkpoint's base LR and
        the optimizer's last LR, which differ when the run was extended with another schedule."""
        step = int(self.trainer.global_step)
        for cfg in self.trainer.lr_scheduler_configs:
            cfg.scheduler.base_lrs = [self.schedule.peak_lr] * len(cfg.scheduler.base_lrs)
        for opt in self.trainer.optimizers:
            for g in opt.param_groups:
                g["initial_lr"] = self.schedule.peak_lr
                g["lr"] = self.schedule.lr(step)

    def _log_now(self) -> bool:
        return self.trainer.global_step % max(1, self.trainer.log_every_n_steps) == 0

    def on_before_optimizer_step(self, optimizer) -> None:
        """Global-norm clipping before AdamW (spec §12.1); logs the pre-clip norm as ``grad_norm``."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return
        max_norm = self.grad_clip_norm if self.grad_clip_norm is not None else float("inf")
        if isinstance(self.trainer.strategy, FSDPStrategy):
            # FSDP1 flat shards: only the root FSDP module can compute the true global norm
            total = self.trainer.strategy.model.clip_grad_norm_(max_norm)
        else:
            # plain tensors, or FSDP2 DTensors (clip_grad_norm_ reduces DTensor norms across shards)
            total = torch.nn.utils.clip_grad_norm_(params, max_norm)
            if hasattr(total, "full_tensor"):
                total = total.full_tensor()
        self.log("train/grad_norm", total, on_step=True, on_epoch=False)
        self.log("train/lr", optimizer.param_groups[0]["lr"], on_step=True, on_epoch=False)
        if self._log_now():
            with torch.no_grad():
                kernels = [_norm(p.detach()) for p in self.model.parameters() if p.ndim >= 2]
                if kernels:  # spec §14: param_norm over kernels only
                    self.log("train/param_norm", torch.stack(kernels).norm(), on_step=True, on_epoch=False)
                if self.log_group_grad_norms:
                    for name, child in self._grad_groups():
                        g = [_norm(p.grad.detach()) for p in child.parameters() if p.grad is not None]
                        if g:
                            self.log(f"train/grad_norm_{name}", torch.stack(g).norm(), on_step=True, on_epoch=False)

    def _grad_groups(self):
        """Top-level children, plus the two experts of the mixture of transformers as
        ``grad_norm_vlm`` / ``grad_norm_action_expert`` (spec §14: the seed logs these under KI)."""
        yield from self.model.named_children()
        from behavior_lab.models.gemma_mot import MixtureOfTransformers

        for m in self.model.modules():
            if isinstance(m, MixtureOfTransformers):
                yield "vlm", m.vlm
                yield "action_expert", m.expert
                break

    # --- steps -------------------------------------------------------------------------------------
    def _fork_devices(self) -> list:
        return [self.device] if self.device.type == "cuda" else []

    def _compute(self, batch: dict, seed: int) -> dict[str, torch.Tensor]:
        with torch.random.fork_rng(devices=self._fork_devices(), device_type=self.device.type):
            torch.manual_seed(seed)
            return self.model.compute_loss(batch)

    def _log_outputs(self, out: Mapping[str, torch.Tensor], split: str, batch_size: int) -> None:
        train = split == "train"
        for key, name in _SCALAR_KEYS.items():
            if key in out:
                self.log(
                    f"{split}/{name}",
                    out[key].detach().float(),
                    on_step=train,
                    on_epoch=not train,
                    prog_bar=(name in ("loss", "action_loss")),
                    batch_size=batch_size,
                    sync_dist=not train,
                )
        per_dim = out.get("action_loss_per_dim")
        if per_dim is not None and (not train or self._log_now()):
            per_dim = per_dim.detach().float()
            for i, dim_name in enumerate(ACTION_DIM_NAMES[: per_dim.shape[0]]):
                self.log(
                    f"{split}/action_loss_{dim_name}",
                    per_dim[i],
                    on_step=train,
                    on_epoch=not train,
                    batch_size=batch_size,
                    sync_dist=not train,
                )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self._compute(batch, step_seed(self.seed, self.global_step, self.global_rank, stream=0))
        bs = int(batch["actions"].shape[0])
        self._log_outputs(out, "train", bs)
        return out["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self._compute(batch, step_seed(self.seed, batch_idx, self.global_rank, stream=1))
        self._log_outputs(out, "val", int(batch["actions"].shape[0]))

    # --- exact resume: RNG states travel with the checkpoint ---------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["lr_schedule"] = dataclasses.asdict(self.schedule)
        states = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            states["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["rng_states"] = states

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("lr_schedule")
        if saved is None:  # checkpoints from before build_scheduler wrapped the schedule: LambdaLR kept its fields
            lambdas = (checkpoint.get("lr_schedulers") or [{}])[0].get("lr_lambdas") or [None]
            saved = lambdas[0] if isinstance(lambdas[0], dict) else None
        note = schedule_change(saved, self.schedule, int(checkpoint.get("global_step", 0)))
        if note:
            rank_zero_warn(note)
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        np.random.set_state(_plain_to_numpy_state(states["numpy"]))
        random.setstate(states["python"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
