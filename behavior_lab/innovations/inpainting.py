"""Soft, correlation-aware inpainting, sampler side (innovation `inpainting`, spec §9).

Kept actions a₀ (B, k, D) (normalised, padded; the first k positions of the new chunk) are imposed
during the early Euler steps: with fixed noise z_O = ε[O] and t' the time after a step,
x*_O = (1 − t')·a₀ + t'·z_O replaces x'[O]; δ_U = C·(x*_O − x'[O]) is added to the other entries
when max|δ_U| ≤ guard (1.0, over the whole batch). C = Σ_β[U,O]·(Σ_β[O,O] + εI)^−1 from the shrunk
prior (spec §9.3); Σ = I (no stats, or propagation off) gives C = 0 (hard constraint only).

Step count (spec §9.4, §16 q4): the seed's float32 time accumulation inpaints 13 of 20 steps
(t' = 0.95 … 0.35); its README says 70 %, i.e. 14 (t' = 0.95 … 0.30). We default to the documented
intent, `step_rule="inclusive"`: steps whose exact t' ≥ τ, 14 of 20; `step_rule="seed_float32"`
reproduces the 13. The prior is decoupled from `correlated_noise` (spec §3 "Ablation"): it has its
own β and works with i.i.d. noise too. Whether inpainting is used at all (k > 0) is the policy
runtime's choice (`initial_actions`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from behavior_lab.innovations.correlated_noise import shrunk_covariance


@dataclasses.dataclass(frozen=True)
class InpaintingConfig:
    time_threshold: float = 0.3  # spec §9.4: τ (PiBehaviorConfig.time_threshold_inpaint)
    guard: float = 1.0  # spec §9.4: max |δ_U| allowed for the propagated correction
    correlation_propagation: bool = True  # spec §9 ablation: off = C = 0
    beta: float = 0.5  # spec §3.2: the shrunk prior Σ_β
    step_rule: str = "inclusive"  # "inclusive" (14 of 20) | "seed_float32" (13 of 20)

    def __post_init__(self):
        if self.step_rule not in ("inclusive", "seed_float32"):
            raise ValueError(f"inpainting.step_rule={self.step_rule!r}; valid: 'inclusive', 'seed_float32'")


def num_inpaint_steps(num_steps: int, tau: float, rule: str) -> int:
    """How many leading Euler steps get the correction (see module docstring)."""
    if rule == "inclusive":
        return sum(1 for j in range(1, num_steps + 1) if (num_steps - j) / num_steps >= tau - 1e-9)
    t, dt, n = np.float32(1.0), np.float32(-1.0 / num_steps), 0  # the seed's float32 loop
    for _ in range(num_steps):
        t = np.float32(t + dt)
        n += int(t > np.float32(tau))
    return n


def correction_matrix(sigma: torch.Tensor, num_kept: int, dim: int) -> torch.Tensor:
    """C = Σ[U,O]·(Σ[O,O] + εI)^−1, ε = 1e-6·max(mean diag Σ[O,O], 1) (spec §9.3); O = first k·D flat
    indices (t < k, all D dims incl. padding). Returns (H·D − k·D, k·D) float32."""
    o = num_kept * dim
    s = sigma.double()
    s_oo, s_uo = s[:o, :o], s[o:, :o]
    eps = 1e-6 * max(float(s_oo.diagonal().mean()), 1.0)
    reg = s_oo + eps * torch.eye(o, dtype=s.dtype, device=s.device)
    return torch.linalg.solve(reg, s_uo.T).T.float()  # = s_uo @ reg^-1 (reg symmetric)


@dataclasses.dataclass
class InpaintPlan:
    kept: torch.Tensor  # (B, k, D)
    z_obs: torch.Tensor  # (B, k, D) fixed noise at the kept positions
    corr: torch.Tensor  # (H·D − k·D, k·D)
    active_steps: int
    guard: float

    def apply(self, x: torch.Tensor, step: int, t_next: float) -> torch.Tensor:
        """x (B, H, D) after Euler step `step` (1-based) landing at time t_next."""
        if step > self.active_steps:
            return x
        B, H, D = x.shape
        k = self.kept.shape[1]
        target = (1.0 - t_next) * self.kept + t_next * self.z_obs  # x*_O
        delta_o = (target - x[:, :k]).reshape(B, k * D)
        delta_u = delta_o @ self.corr.T  # (B, (H−k)·D)
        rest = x[:, k:]
        if delta_u.numel() and float(delta_u.abs().max()) <= self.guard:
            rest = rest + delta_u.reshape(B, H - k, D).to(x.dtype)
        return torch.cat([target.to(x.dtype), rest], dim=1)


class Inpainter(nn.Module):
    def __init__(self, cfg: InpaintingConfig, horizon: int, dim: int):
        super().__init__()
        self.cfg, self.horizon, self.dim = cfg, horizon, dim
        self.register_buffer("sigma", torch.empty(0), persistent=False)  # Σ_β, empty = I
        self._cache: dict[int, torch.Tensor] = {}

    def _apply(self, fn, recurse=True):
        """Follow the model's device but keep Σ_β in fp32 when the model is cast to bf16."""
        keep = self.sigma
        super()._apply(fn, recurse)
        self.sigma = keep.to(self.sigma.device)
        self._cache.clear()
        return self

    def set_cholesky(self, cholesky) -> None:
        L = torch.as_tensor(cholesky, dtype=torch.float32)
        n = self.horizon * self.dim
        if L.shape != (n, n):
            raise ValueError(f"action correlation Cholesky factor has shape {tuple(L.shape)}; expected ({n}, {n})")
        self.sigma = shrunk_covariance(L, self.cfg.beta).float().to(self.sigma.device)
        self._cache.clear()

    def correction(self, k: int, device) -> torch.Tensor:
        n_u = (self.horizon - k) * self.dim
        if not self.cfg.correlation_propagation or self.sigma.numel() == 0:
            return torch.zeros(n_u, k * self.dim, device=device)  # Σ = I ⇒ C = 0
        if k not in self._cache:  # spec §9.3: cached per number of kept actions
            self._cache[k] = correction_matrix(self.sigma, k, self.dim)
        return self._cache[k].to(device)

    def plan(self, initial_actions: torch.Tensor | None, x1: torch.Tensor, num_steps: int) -> InpaintPlan | None:
        if initial_actions is None or initial_actions.shape[1] == 0:
            return None
        k = initial_actions.shape[1]
        if k >= self.horizon or initial_actions.shape[-1] != self.dim:
            raise ValueError(
                f"initial_actions has shape {tuple(initial_actions.shape)}; expected (B, k<{self.horizon}, {self.dim})"
            )
        return InpaintPlan(
            kept=initial_actions.to(x1.dtype),
            z_obs=x1[:, :k],
            corr=self.correction(k, x1.device),
            active_steps=num_inpaint_steps(num_steps, self.cfg.time_threshold, self.cfg.step_rule),
            guard=self.cfg.guard,
        )
