"""Data-layer benchmarks (`behavior-lab bench data`): each builds a synthetic dataset in a temp dir.

- data.stats_throughput: frames/s of the stats pass (parquet only, correlation included);
- data.samples_from_cache: training samples/s of 3 x 64 px cameras + 30-step chunk from the frame
  cache (target >= 2000/s on 2 cores), plus the cache build rate;
- data.samples_from_mp4: the same samples decoded from the mp4s per sample (the baseline the cache
  replaces);
- data.write_throughput: DatasetWriter frames/s (parquet + 3 videos) with H.264 and HEVC.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from behavior_lab.benchmarks import register
from behavior_lab.data.samples import ChunkSampleSource
from behavior_lab.data.stats import compute_stats
from behavior_lab.data.synthetic import make_synthetic_dataset, synthetic_episode
from behavior_lab.data.writer import DatasetWriter


def _dataset(tmp: str, episodes_per_task: int, length: int, image_size: int) -> Path:
    return make_synthetic_dataset(
        Path(tmp) / "ds", tasks=(0, 1), episodes_per_task=episodes_per_task, length=length, image_size=image_size
    )


def _random_access(src: ChunkSampleSource, n: int, seed: int = 0) -> float:
    idx = np.random.default_rng(seed).integers(0, len(src), size=n)
    src[int(idx[0])]  # warm the maps / decoders
    t0 = time.perf_counter()
    for i in idx:
        src[int(i)]
    return n / (time.perf_counter() - t0)


@register("data.stats_throughput")
def stats_throughput(quick: bool = False) -> dict:
    """Stats pass (per-timestep stats, quantiles, 960x960 correlation) frames/s; parquet only."""
    per_task, length = (2, 600) if quick else (5, 2400)
    with tempfile.TemporaryDirectory() as tmp:
        root = _dataset(tmp, per_task, length, image_size=16)
        t0 = time.perf_counter()
        stats = compute_stats(root, progress=False)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        compute_stats(root, correlation=False, write=False, progress=False)
        dt_nocorr = time.perf_counter() - t1
    frames = int(stats.info["num_frames"])
    return {
        "episodes": int(stats.info["num_episodes"]),
        "frames": frames,
        "sampled_chunks": int(stats.info["num_chunks"]),
        "seconds": round(dt, 3),
        "frames_per_s": frames / dt,
        "frames_per_s_without_correlation": frames / dt_nocorr,
    }


@register("data.samples_from_cache")
def samples_from_cache(quick: bool = False) -> dict:
    """Training samples/s (3 x 64 px + 30-step chunk) read from the memory-mapped frame cache."""
    per_task, length, n = (2, 150, 4000) if quick else (4, 300, 20000)
    with tempfile.TemporaryDirectory() as tmp:
        root = _dataset(tmp, per_task, length, image_size=128)
        compute_stats(root, progress=False)
        t0 = time.perf_counter()
        src = ChunkSampleSource(root, None, 64, progress=False)
        build = time.perf_counter() - t0
        rate = _random_access(src, n)
        t1 = time.perf_counter()
        ChunkSampleSource(root, None, 64, progress=False)  # warm start: manifest check only
        warm = time.perf_counter() - t1
    decoded = len(src) * 3
    return {
        "samples": n,
        "samples_per_s": rate,
        "cache_build_s": round(build, 3),
        "cache_decode_frames_per_s": decoded / build,
        "cache_warm_open_s": round(warm, 4),
        "source_resolution": 128,
        "model_resolution": 64,
    }


@register("data.samples_from_mp4")
def samples_from_mp4(quick: bool = False) -> dict:
    """Training samples/s decoding the 3 mp4s per sample (GOP 30), no cache: the baseline."""
    per_task, length, n = (2, 150, 150) if quick else (4, 300, 600)
    with tempfile.TemporaryDirectory() as tmp:
        root = _dataset(tmp, per_task, length, image_size=128)
        compute_stats(root, progress=False)
        src = ChunkSampleSource(root, None, 64, use_cache=False, progress=False)
        rate = _random_access(src, n)
    return {"samples": n, "samples_per_s": rate, "source_resolution": 128, "model_resolution": 64, "gop": 30}


@register("data.write_throughput")
def write_throughput(quick: bool = False) -> dict:
    """DatasetWriter frames/s (parquet + 3 RGB videos at 128 px), H.264 and HEVC."""
    length, episodes = (120, 2) if quick else (300, 4)
    out: dict = {"image_size": 128, "frames": length * episodes}
    rng = np.random.default_rng(0)
    eps = [synthetic_episode(length, 128, rng) for _ in range(episodes)]
    for codec in ("libx264", "libx265"):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            with DatasetWriter(Path(tmp) / "ds", codec=codec) as w:
                for e in eps:
                    w.add_episode(0, e)
            out[f"{codec}_frames_per_s"] = length * episodes / (time.perf_counter() - t0)
    return out
