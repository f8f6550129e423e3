"""Step-indexed, seeded sampling: the sample at global position k is a pure function of (seed, k).

The seed trains on uniformly random frames drawn with replacement-free shuffles (spec §12.3: a
shuffling map-style loader). We keep that, but make the order addressable: position k belongs to
pass ``k // n`` whose permutation is ``randperm(n, seed + pass)``. Resuming at step s therefore just
starts at position ``s * batch_size * world_size`` — no iterator state to pickle, and the state_dict
is two integers. The sampler is infinite (no ``__len__``): training length is ``trainer.max_steps``.
Under DDP each rank takes every ``world_size``-th position (rank offset), so ranks never overlap.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class StepSeededSampler(Sampler[int]):
    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_samples <= 0:
            raise ValueError("StepSeededSampler needs a non-empty dataset (num_samples > 0)")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.start = int(start)  # global position (across ranks) of the first sample yielded
        self.rank = int(rank)
        self.world_size = int(world_size)

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=g)

    def index_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_samples)
        return int(self.permutation(epoch)[offset])

    def __iter__(self) -> Iterator[int]:
        pos = self.start + self.rank
        epoch, perm = -1, None
        while True:
            e, offset = divmod(pos, self.num_samples)
            if e != epoch:
                epoch, perm = e, self.permutation(e)
            yield int(perm[offset])
            pos += self.world_size

    def state_dict(self) -> dict:
        return {"seed": self.seed, "start": self.start, "num_samples": self.num_samples}

    def load_state_dict(self, state: dict) -> None:
        if int(state["num_samples"]) != self.num_samples:
            raise ValueError(
                f"sampler state is for {state['num_samples']} samples, this dataset has {self.num_samples}; "
                "resume with the same data.root / data.tasks / split"
            )
        self.seed, self.start = int(state["seed"]), int(state["start"])
