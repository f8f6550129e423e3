"""Multi-sample flow matching (innovation `multi_sample_fm`, spec §4.1).

on:  N = 15 (noise, time) pairs per example share one VLM prefix pass and its (transformed) K/V
     cache; the action loss averages over the N samples.
off: N = 1 (plain Pi0.5).
The time distribution is common to both: t = t_min + (1 − t_min)·u, u ~ Beta(α, β) with
α = 1.5, β = 1, t_min = 0.001 (spec §4.1); t = 1 is pure noise.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class MultiSampleFMConfig:
    enabled: bool = False
    num_samples: int = 15  # spec §4.1: TrainConfig.num_flow_samples

    @property
    def samples_per_pass(self) -> int:
        return self.num_samples if self.enabled else 1

    def __post_init__(self):
        if self.num_samples < 1:
            raise ValueError(f"multi_sample_fm.num_samples={self.num_samples} must be >= 1")


def sample_time(shape, alpha: float, beta: float, t_min: float, generator=None, device=None) -> torch.Tensor:
    """t ∈ [t_min, 1]. For β = 1 the inverse CDF u = U^(1/α) is exact and honours `generator`."""
    if beta == 1.0:
        u = torch.rand(shape, generator=generator, device=device).pow(1.0 / alpha)
    else:  # torch's Beta sampler has no generator argument
        dist = torch.distributions.Beta(torch.tensor(alpha, device=device), torch.tensor(beta, device=device))
        u = dist.sample(torch.Size(shape))
    return u * (1.0 - t_min) + t_min
