"""Streaming mean / variance / co-moments with Chan et al.'s pairwise merge (float64).

The stats pass reads one episode at a time; merging each episode's centred sums keeps memory
bounded and avoids the cancellation of the raw sum / sum-of-squares formula on long datasets.
"""

from __future__ import annotations

import numpy as np


class RunningMoments:
    """Mean and population variance (ddof=0, as np.std) over axis 0 of the batches given."""

    def __init__(self, shape: tuple[int, ...]):
        self.n = 0
        self.mean = np.zeros(shape, dtype=np.float64)
        self.m2 = np.zeros(shape, dtype=np.float64)

    def update(self, batch: np.ndarray) -> None:
        x = np.asarray(batch, dtype=np.float64)
        nb = x.shape[0]
        if nb == 0:
            return
        mb = x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta**2 * (self.n * nb / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        if self.n == 0:
            raise ValueError("no samples accumulated")
        return np.sqrt(self.m2 / self.n)


class RunningCoMoments:
    """Mean and centred cross-product matrix C = Σ (x − μ)(x − μ)ᵀ over rows of (n, d) batches."""

    def __init__(self, dim: int):
        self.n = 0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.c = np.zeros((dim, dim), dtype=np.float64)

    def update(self, rows: np.ndarray) -> None:
        x = np.asarray(rows, dtype=np.float64)
        nb = x.shape[0]
        if nb == 0:
            return
        mb = x.mean(axis=0)
        xc = x - mb
        cb = xc.T @ xc
        n = self.n + nb
        delta = mb - self.mean
        self.c += cb + np.outer(delta, delta) * (self.n * nb / n)
        self.mean += delta * (nb / n)
        self.n = n
