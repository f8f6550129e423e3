"""Exponential moving average of the model weights (spec §12.1: decay 0.99 per optimizer step).

The EMA weights are the ones exported for inference (the seed saves EMA as ``params``). They are part
of the Lightning checkpoint (callback state), so a resumed run continues the same average. With
``validate_with_ema`` the validation loop runs on the EMA weights (swapped in and back exactly).
Initialised from the weights at fit start, like optax's EMA in openpi (ema = params at init).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import FSDPStrategy


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """A plain CPU tensor; FSDP2 DTensor shards are gathered (a collective: call on every rank)."""
    t = t.detach()
    if hasattr(t, "full_tensor"):
        t = t.full_tensor()
    return t.cpu().clone()


def _like(value: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``value`` (full, fp32) placed like ``param`` (device, and DTensor sharding under FSDP2)."""
    if hasattr(param, "device_mesh") and not hasattr(value, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(value.float().to(param.device), param.device_mesh, param.placements)
    return value.to(device=param.device, dtype=torch.float32)


class EMACallback(pl.Callback):
    def __init__(self, decay: float = 0.99, validate_with_ema: bool = True, module_attr: str = "model") -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema.decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.validate_with_ema = validate_with_ema
        self.module_attr = module_attr
        self.ema: dict[str, torch.Tensor] | None = None
        self.num_updates = 0
        self._last_step = -1
        self._backup: dict[str, torch.Tensor] | None = None

    # --- helpers -----------------------------------------------------------------------------------
    def _params(self, pl_module: pl.LightningModule) -> dict[str, torch.nn.Parameter]:
        return dict(getattr(pl_module, self.module_attr).named_parameters())

    def _init_or_move(self, pl_module: pl.LightningModule) -> None:
        params = self._params(pl_module)
        if self.ema is None:
            self.ema = {n: p.detach().clone().float() for n, p in params.items()}
            return
        missing = sorted(set(params) - set(self.ema))
        if missing:
            raise KeyError(f"EMA state lacks parameters {missing[:5]}... (checkpoint from another model config?)")
        self.ema = {n: _like(self.ema[n], params[n]) for n in params}

    @torch.no_grad()
    def swap_in(self, pl_module: pl.LightningModule) -> None:
        """Copy the EMA weights into the live model, keeping a backup of the training weights."""
        if self._backup is not None:
            raise RuntimeError("EMA weights are already swapped in")
        params = self._params(pl_module)
        self._backup = {n: p.detach().clone() for n, p in params.items()}
        for n, p in params.items():
            p.copy_(self.ema[n])

    @torch.no_grad()
    def swap_out(self, pl_module: pl.LightningModule) -> None:
        if self._backup is None:
            return
        for n, p in self._params(pl_module).items():
            p.copy_(self._backup[n])
        self._backup = None

    @contextlib.contextmanager
    def applied(self, pl_module: pl.LightningModule) -> Iterator[None]:
        self.swap_in(pl_module)
        try:
            yield
        finally:
            self.swap_out(pl_module)

    # --- hooks -------------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # FSDP1's flat parameters hide the per-tensor views EMA averages; the project's FSDP path is
        # FSDP2 (conf/trainer/fsdp.yaml), so FSDP1 is a configuration error, not a missing feature.
        if isinstance(trainer.strategy, FSDPStrategy):
            raise ValueError(
                "EMACallback supports FSDP2 (trainer=fsdp, ModelParallelStrategy), not FSDP1's flat "
                "parameters (FSDPStrategy); use trainer=fsdp, or set ema.decay=null to disable EMA"
            )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._init_or_move(pl_module)
        self._last_step = trainer.global_step

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._last_step:  # no optimizer step (grad accumulation)
            return
        self._last_step = trainer.global_step
        d = self.decay
        for n, p in self._params(pl_module).items():
            self.ema[n].mul_(d).add_(p.detach().float(), alpha=1.0 - d)
        self.num_updates += 1

    def on_validation_start(self, trainer, pl_module) -> None:
        if self.validate_with_ema and self.ema is not None and not trainer.sanity_checking:
            self.swap_in(pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        self.swap_out(pl_module)

    def state_dict(self) -> dict:
        return {
            "decay": self.decay,
            "num_updates": self.num_updates,
            "ema": {n: full_tensor(t) for n, t in (self.ema or {}).items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
        self.ema = {n: t.clone() for n, t in state["ema"].items()} or None

    def ema_state_dict(self, pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
        """The model's full state_dict (buffers included) with EMA values for the parameters."""
        module = getattr(pl_module, self.module_attr)
        with self.applied(pl_module):
            return {k: full_tensor(v) for k, v in module.state_dict().items()}
