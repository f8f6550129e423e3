"""Which action chunks the statistics are computed from, decided reproducibly before reading data.

spec §3.1 steps 2-4: every full window i = 0..T-H of an episode is a chunk (no end padding);
max(1, int(n * sample_fraction)) of them are kept per episode without replacement; more than
`max_correlation_samples` chunks are subsampled for the correlation, and more than
`max_quantile_samples` chunk rows for q01/q99 (spec §7.1).

Unlike the seed, whose per-episode RNG comes from Python's process-randomised `hash(str(path))`,
every generator here is seeded from (seed, episode_index) through numpy's SeedSequence, so the
same dataset and seed give bit-identical stats in any process. Because the episode lengths are
known from meta/episodes.jsonl, the global subsets are drawn up front and the data is streamed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from behavior_lab.data import schema


def episode_rng(seed: int, episode_index: int) -> np.random.Generator:
    """A Generator that depends only on (seed, episode_index): stable across processes and runs."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(episode_index)]))


def num_windows(length: int, horizon: int) -> int:
    return max(0, int(length) - horizon + 1)


def sampled_starts(length: int, horizon: int, fraction: float, seed: int, episode_index: int) -> np.ndarray:
    """Sorted chunk start frames kept for one episode (seed: max(1, int(n·fraction)), no replacement)."""
    n = num_windows(length, horizon)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(1, int(n * fraction))
    if fraction >= 1.0 or k >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(episode_rng(seed, episode_index).choice(n, size=k, replace=False)).astype(np.int64)


def delta_chunks(state: np.ndarray, action: np.ndarray, starts: np.ndarray, horizon: int, mask: np.ndarray) -> np.ndarray:
    """(k, H, 23) chunks a[i+t] − s[i] on the masked dims, relative to the chunk-start state (spec §8.1)."""
    idx = starts[:, None] + np.arange(horizon)[None, :]
    chunks = action[idx].astype(np.float32)  # (k, H, D)
    ref = state[starts][:, None, :]
    n = mask.shape[0]
    chunks[..., :n] = np.where(mask, chunks[..., :n] - ref[..., :n], chunks[..., :n])
    return chunks


def subset_mask(total: int, cap: int | None, seed: int) -> np.ndarray | None:
    """None when all `total` items are kept; else a bool mask choosing `cap` of them (seeded)."""
    if cap is None or total <= cap:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED, int(total)]))
    keep = np.zeros(total, dtype=bool)
    keep[rng.choice(total, size=int(cap), replace=False)] = True
    return keep


@dataclass
class SamplingPlan:
    """Per-episode chunk starts plus the global correlation / quantile subsets, in episode order."""

    starts: dict[int, np.ndarray]
    corr_keep: np.ndarray | None  # over all sampled chunks (episode order)
    quantile_keep: np.ndarray | None  # over all sampled chunk rows (chunk-major, H rows per chunk)
    state_keep: np.ndarray | None  # over all frames (episode order)
    horizon: int

    @property
    def num_chunks(self) -> int:
        return int(sum(len(s) for s in self.starts.values()))


def make_plan(
    lengths: dict[int, int],
    horizon: int = schema.ACTION_HORIZON,
    sample_fraction: float = 0.1,
    seed: int = 42,
    max_correlation_samples: int | None = 2_000_000,
    max_quantile_samples: int | None = 1_000_000,
) -> SamplingPlan:
    if not 0.0 < sample_fraction <= 1.0:
        raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
    starts = {ep: sampled_starts(lengths[ep], horizon, sample_fraction, seed, ep) for ep in sorted(lengths)}
    n_chunks = int(sum(len(s) for s in starts.values()))
    n_frames = int(sum(lengths.values()))
    return SamplingPlan(
        starts=starts,
        corr_keep=subset_mask(n_chunks, max_correlation_samples, seed),
        quantile_keep=subset_mask(n_chunks * horizon, max_quantile_samples, seed + 1),
        state_keep=subset_mask(n_frames, max_quantile_samples, seed + 2),
        horizon=horizon,
    )


class ChunkReservoir:
    """Keeps a uniform random subset of at most `capacity` chunks from a stream (Algorithm R).

    Deterministic for a fixed seed and stream order; used to hand sampled chunks to the FAST
    tokenizer fit without holding every chunk in memory.
    """

    def __init__(self, capacity: int, seed: int = 42):
        if capacity < 1:
            raise ValueError(f"reservoir capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFA57]))
        self._items: np.ndarray | None = None
        self.seen = 0

    def __call__(self, chunks: np.ndarray) -> None:
        for chunk in np.asarray(chunks):
            if self._items is None:
                self._items = np.empty((self.capacity,) + chunk.shape, dtype=np.float32)
            if self.seen < self.capacity:
                self._items[self.seen] = chunk
            else:
                j = int(self._rng.integers(0, self.seen + 1))
                if j < self.capacity:
                    self._items[j] = chunk
            self.seen += 1

    @property
    def chunks(self) -> np.ndarray:
        if self._items is None:
            return np.zeros((0, schema.ACTION_HORIZON, schema.ACTION_DIM), dtype=np.float32)
        return self._items[: min(self.seen, self.capacity)]
