"""Action-chunk correlation matrix and its Cholesky factor (spec §3.1, seed `compute_norm_stats.py`).

Input: the centred cross-products of flattened delta chunks over the real dims (H x 23, flat index
t*23 + d). Output: the 960 x 960 (H x 32, flat index t*32 + d) correlation with padded and
constant columns set to identity rows, regularised and Cholesky-factored exactly as the seed does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# spec §3.1 step 5: a column whose std is below this is "constant" (incl. the 9 padded dims).
CONSTANT_STD = 1e-6
# spec §3.1 step 6: first try + 1e-6 I; if still not PD, ε = max(1e-5, −λ_min + 1e-5).
REGULARIZER = 1e-6
FALLBACK_REGULARIZER = 1e-5


@dataclass(frozen=True)
class ChunkCorrelation:
    correlation: np.ndarray  # (H*Dp, H*Dp) unit diagonal
    cholesky: np.ndarray  # (H*Dp, H*Dp) lower: L Lᵀ = correlation + ε I
    regularization: float  # ε actually added
    spatial: np.ndarray  # (Dp, Dp) averaged over t (analysis only, spec §3.1 step 7)
    temporal: np.ndarray  # (H, H) averaged over non-constant dims (analysis only)
    num_chunks: int
    constant: np.ndarray  # (H*Dp,) bool


def correlation_from_comoments(
    c: np.ndarray, n: int, horizon: int, real_dim: int, padded_dim: int
) -> ChunkCorrelation:
    """Centred cross-products (H*real_dim square) of n chunks -> padded correlation + Cholesky."""
    if n < 2:
        raise ValueError(f"the action correlation needs at least 2 chunks, got {n}")
    hd = horizon * real_dim
    if c.shape != (hd, hd):
        raise ValueError(f"co-moment matrix is {c.shape}; expected ({hd}, {hd})")
    diag = np.diag(c).copy()
    std = np.sqrt(np.maximum(diag, 0.0) / n)  # np.std (ddof=0) of each column
    const_real = std < CONSTANT_STD
    safe = np.where(const_real, 1.0, diag)
    corr_real = c / np.sqrt(np.outer(safe, safe))
    corr_real[const_real, :] = 0.0
    corr_real[:, const_real] = 0.0
    np.fill_diagonal(corr_real, 1.0)

    # Embed (t, d<real_dim) into the padded flat index t*padded_dim + d; padded columns are constant.
    idx = (np.arange(horizon)[:, None] * padded_dim + np.arange(real_dim)[None, :]).reshape(-1)
    size = horizon * padded_dim
    corr = np.eye(size)
    corr[np.ix_(idx, idx)] = corr_real
    corr = 0.5 * (corr + corr.T)
    constant = np.ones(size, dtype=bool)
    constant[idx] = const_real

    eps = REGULARIZER
    reg = corr + eps * np.eye(size)
    lam_min = float(np.linalg.eigvalsh(reg).min())
    if lam_min <= 0:
        eps = max(FALLBACK_REGULARIZER, -lam_min + FALLBACK_REGULARIZER)
        reg = corr + eps * np.eye(size)
    try:
        chol = np.linalg.cholesky(reg)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"action correlation is not positive definite even with ε = {eps:g} ({e})") from e

    blocks = corr.reshape(horizon, padded_dim, horizon, padded_dim)
    spatial = np.mean([blocks[t, :, t, :] for t in range(horizon)], axis=0)
    np.fill_diagonal(spatial, 1.0)
    dim_const = constant.reshape(horizon, padded_dim).all(axis=0)
    live = [d for d in range(padded_dim) if not dim_const[d]]
    temporal = np.mean([blocks[:, d, :, d] for d in live], axis=0) if live else np.eye(horizon)
    np.fill_diagonal(temporal, 1.0)
    return ChunkCorrelation(corr, chol, eps, spatial, temporal, int(n), constant)
