"""Data side of the FAST auxiliary loss: per-sample tokens (spec §7.2) and the dataset-level fit
hook used by `behavior-lab stats` (spec §7.1, chunk pipeline of spec §3.1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from behavior_lab.data import chunk_sampling, layout, schema
from behavior_lab.data.fast_tokenizer import (
    DEFAULT_ENCODED_DIMS,
    DEFAULT_MIN_FREQUENCY,
    DEFAULT_SCALE,
    DEFAULT_VOCAB_SIZE,
    DctCodec,
    FastTokenizer,
)
from behavior_lab.data.reader import BehaviorDataset
from behavior_lab.data.transforms import NORM_EPS

log = logging.getLogger(__name__)

MAX_FAST_TOKENS = 200  # spec §7.2: the shipped config overrides the default 32 with 200
FAST_PAD_ID = 0  # spec §7.2/§7.3: padding uses token 0, which is also BOS (quirk, §14; see fast_tokenizer.PAD_TOKEN)
DEFAULT_SAMPLE_FRACTION = 0.1  # spec §3.1 step 3 / §7.1: 10% of chunks per episode
# Not in the seed (which fits on every sampled chunk): `tokenizers`' BPE trainer holds each distinct
# 660-symbol chunk string as its own word, ~75 KB of RAM per chunk (measured: 57k chunks -> 4.4 GB,
# ~1 min). 10% of the 2025 demos is ~12M chunks, far beyond any machine, so the fit draws a seeded
# subset. On smooth synthetic chunks the token lengths of a 5.7k-chunk and a 28.5k-chunk fit agree
# to 0.1% (mean 50.65 vs 50.60 tokens), so 100k chunks is well past convergence.
DEFAULT_MAX_FIT_CHUNKS = 100_000


def fast_tokens_for_chunk(
    tokenizer: FastTokenizer,
    chunk: np.ndarray,
    max_fast_tokens: int = MAX_FAST_TOKENS,
    *,
    action_mean: np.ndarray | None = None,
    action_std: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise one action chunk for the FAST loss (spec §7.2) -> (tokens int64 (L,), mask bool (L,)).

    `chunk` is (H, A) with A >= max(encoded dim) + 1, e.g. the sample's (30, 32) `actions`.
    - Without `action_mean`/`action_std` the chunk is taken as raw delta actions.
    - With them it is taken as per-timestep normalised and first denormalised,
      ā = â·(σ + 1e-6) + μ (spec §7.2 step 2, §8.2); mean/std broadcast against the chunk, e.g. (30, 32).
    Tokens past `max_fast_tokens` are dropped; shorter sequences are right-padded with id 0 and mask
    False (spec §7.2 step 4). Id 0 is also BOS (spec §7.3, §14); a tokenizer fitted with
    reserve_pad_id (default) never emits it, otherwise only the mask tells pad from a real id 0.
    """
    if max_fast_tokens < 1:
        raise ValueError(f"max_fast_tokens must be >= 1, got {max_fast_tokens}")
    x = np.asarray(chunk, dtype=np.float64)
    if (action_mean is None) != (action_std is None):
        raise ValueError("pass both action_mean and action_std (normalised chunk) or neither (raw chunk)")
    if action_mean is not None:
        mean = np.asarray(action_mean, dtype=np.float64)
        std = np.asarray(action_std, dtype=np.float64)
        try:
            x = x * (std + NORM_EPS) + mean
        except ValueError:
            raise ValueError(
                f"normalised chunk {x.shape} does not broadcast with action mean {mean.shape} / std {std.shape}"
            ) from None
    ids = tokenizer.encode(x)
    n = min(len(ids), max_fast_tokens)
    tokens = np.full(max_fast_tokens, FAST_PAD_ID, dtype=np.int64)
    tokens[:n] = ids[:n]
    mask = np.zeros(max_fast_tokens, dtype=bool)
    mask[:n] = True
    return tokens, mask


# --- dataset hook for `behavior-lab stats` -----------------------------------------------------------


def iter_sampled_delta_chunks(
    dataset: BehaviorDataset,
    seed: int,
    sample_fraction: float = DEFAULT_SAMPLE_FRACTION,
    horizon: int = schema.ACTION_HORIZON,
    delta_mask: np.ndarray = schema.DELTA_ACTION_MASK,
    max_chunks: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (episode_index, sampled delta chunks (k, H, 23) float32) per episode, sorted (spec §7.1).

    The sample is the one `behavior-lab stats` uses for the same seed (`chunk_sampling`: windows
    i = 0..T-H, max(1, int(n·fraction)) per episode, a Generator per (seed, episode_index)), which
    fixes the seed's process-randomised `hash(str(path))` seeding (spec §14). Deltas are relative to
    the chunk-start state on the masked dims (spec §8.1). With `max_chunks`, a seeded subset of that
    many is drawn up front from the episode lengths, so episodes left with no chunk are not read.
    """
    if not 0.0 < sample_fraction <= 1.0:
        raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
    mask = np.asarray(delta_mask, dtype=bool)
    episodes = sorted(dataset.episode_indices)
    starts = {
        ep: chunk_sampling.sampled_starts(dataset.episode_length(ep), horizon, sample_fraction, seed, ep)
        for ep in episodes
    }
    keep = chunk_sampling.subset_mask(sum(len(s) for s in starts.values()), max_chunks, seed + 3)
    pos = 0
    for ep in episodes:
        kept = starts[ep] if keep is None else starts[ep][keep[pos : pos + len(starts[ep])]]
        pos += len(starts[ep])
        if len(kept) == 0:
            yield ep, np.zeros((0, horizon, schema.ACTION_DIM), dtype=np.float32)
            continue
        state, action = dataset.load_state_action(ep)
        yield ep, chunk_sampling.delta_chunks(state, action, kept, horizon, mask)


def _action_quantiles(norm_stats: Any) -> tuple[np.ndarray, np.ndarray]:
    """action q01/q99 from a NormStats-like object or a mapping (keys action_q01/action_q99)."""
    if isinstance(norm_stats, Mapping):
        q01, q99 = norm_stats.get("action_q01"), norm_stats.get("action_q99")
    else:
        q01, q99 = getattr(norm_stats, "action_q01", None), getattr(norm_stats, "action_q99", None)
    if q01 is None or q99 is None:
        raise ValueError(
            "norm_stats has no action_q01/action_q99 (spec §7.1: FAST clips to the action quantiles); "
            f"got {type(norm_stats).__name__}"
        )
    return np.asarray(q01, dtype=np.float64), np.asarray(q99, dtype=np.float64)


def fit_fast_tokenizer_from_dataset(
    root: str | os.PathLike,
    norm_stats: Any,
    seed: int = 42,
    sample_fraction: float = DEFAULT_SAMPLE_FRACTION,
    *,
    tasks: Iterable[str | int] | None = None,
    dims: str = DEFAULT_ENCODED_DIMS,
    scale: float = DEFAULT_SCALE,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    min_frequency: int = DEFAULT_MIN_FREQUENCY,
    horizon: int = schema.ACTION_HORIZON,
    delta_mask: np.ndarray = schema.DELTA_ACTION_MASK,
    pretokenizer: str = "none",
    reserve_pad_id: bool = True,
    max_chunks: int | None = DEFAULT_MAX_FIT_CHUNKS,
    out_dir: str | os.PathLike | None = None,
    save: bool = True,
) -> FastTokenizer:
    """Fit the FAST tokenizer on a BEHAVIOR v2.1 dataset and save it to DIR/meta/fast_tokenizer/.

    Spec §7.1: delta chunks relative to the chunk-start state (H=30), 10% per episode, episodes
    sorted (all episodes, or those of `tasks`). With the same seed and fraction these are exactly
    the chunks `compute_stats` sampled (its default seed is 42, so is ours). Each dim is clipped and
    normalised with the action q01/q99 of `norm_stats` (a NormStats or a mapping with action_q01 /
    action_q99 of the full action width). Chunks become int16 DCT codes per episode, so memory is
    ~2·H·D bytes per sampled chunk; `max_chunks` caps how many the BPE sees with a seeded subsample
    (see DEFAULT_MAX_FIT_CHUNKS; None = all, as the seed). `delta_mask` must match the one the stats
    used (all False when `delta_actions` is off, spec §8.2 ablation). Returns the tokenizer;
    `save=False` skips writing.
    """
    q01, q99 = _action_quantiles(norm_stats)
    codec = DctCodec.create(q01, q99, dims=dims, scale=scale, horizon=horizon)
    dataset = BehaviorDataset(root, tasks=tasks, cameras=())
    per_episode: list[np.ndarray] = []
    n_episodes = 0
    sampled = iter_sampled_delta_chunks(dataset, seed, sample_fraction, horizon, delta_mask, max_chunks=max_chunks)
    for _, chunks in sampled:
        n_episodes += 1
        if len(chunks):
            per_episode.append(codec.to_codes(chunks))
    if not per_episode:
        raise ValueError(f"{root}: no episode has at least {horizon} frames; cannot fit the FAST tokenizer")
    codes = np.concatenate(per_episode)
    log.info("fitting FAST tokenizer on %d chunks from %d episodes", len(codes), n_episodes)
    tokenizer = FastTokenizer.fit_codes(
        codec,
        codes,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        pretokenizer=pretokenizer,
        reserve_pad_id=reserve_pad_id,
    )
    if save:
        tokenizer.save(Path(out_dir) if out_dir is not None else Path(root) / layout.FAST_TOKENIZER_DIR)
    return tokenizer
