"""Stats equal a direct numpy computation (spec §3.1, §8.2); correlation properties; reproducibility."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from behavior_lab.data import layout, schema
from behavior_lab.data.layout import DatasetError
from behavior_lab.data.reader import BehaviorDataset
from behavior_lab.data.stats import NormStats, compute_stats

H = 30
SEED = 7
FRACTION = 0.5


def direct_stats(root, seed=SEED, fraction=FRACTION):
    """The seed's compute_norm_stats.py, written plainly, with (seed, episode) generators."""
    ds = BehaviorDataset(root)
    mask = schema.DELTA_ACTION_MASK
    chunks, states, same_frame = [], [], []
    for ep in sorted(ds.episode_indices):
        arrays = ds.load_arrays(ep)
        s = schema.extract_state_from_proprio(arrays["observation.state"])  # float32 like the seed
        a = arrays["action"]
        states.append(s.astype(np.float64))
        same_frame.append(np.where(mask, a - s, a).astype(np.float64))
        windows = np.stack([np.where(mask, a[i : i + H] - s[i], a[i : i + H]) for i in range(len(a) - H + 1)])
        windows = windows.astype(np.float64)
        k = max(1, int(len(windows) * fraction))
        idx = np.sort(np.random.default_rng([seed, ep]).choice(len(windows), size=k, replace=False))
        chunks.append(windows[idx])
    return np.concatenate(chunks), np.concatenate(states), np.concatenate(same_frame)


def seed_correlation(chunks):
    """spec §3.1 steps 4-5 verbatim: pad to 32, flatten, standardise, np.cov, renormalise."""
    n = len(chunks)
    flat = np.concatenate([chunks, np.zeros((n, H, 9))], axis=2).reshape(n, H * 32)
    mean, std = flat.mean(0), flat.std(0)
    const = std < 1e-6
    z = np.zeros_like(flat)
    z[:, ~const] = (flat[:, ~const] - mean[~const]) / std[~const]
    cov = np.cov(z, rowvar=False)
    d = np.diag(cov).copy()
    zero = d < 1e-10
    d[zero] = 1.0
    corr = cov / np.sqrt(np.outer(d, d))
    corr[zero, :] = 0.0
    corr[:, zero] = 0.0
    np.fill_diagonal(corr, 1.0)
    return corr


@pytest.fixture(scope="module")
def computed(dataset_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("stats") / "ds"
    shutil.copytree(dataset_root, root)
    stats = compute_stats(root, seed=SEED, sample_fraction=FRACTION, progress=False)
    return root, stats


def test_stats_equal_direct_numpy(computed):
    root, stats = computed
    chunks, states, same_frame = direct_stats(root)
    assert stats.info["num_chunks"] == len(chunks)
    rt = dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(stats.action_mean[:, :23], chunks.mean(0), **rt)
    np.testing.assert_allclose(stats.action_std[:, :23], chunks.std(0), **rt)
    np.testing.assert_allclose(stats.action_global_mean[:23], same_frame.mean(0), **rt)
    np.testing.assert_allclose(stats.action_global_std[:23], same_frame.std(0), **rt)
    rows = chunks.reshape(-1, 23)
    np.testing.assert_allclose(stats.action_q01[:23], np.percentile(rows, 1, axis=0), **rt)
    np.testing.assert_allclose(stats.action_q99[:23], np.percentile(rows, 99, axis=0), **rt)
    np.testing.assert_allclose(stats.state_mean[:23], states.mean(0), **rt)
    np.testing.assert_allclose(stats.state_std[:23], states.std(0), **rt)
    np.testing.assert_allclose(stats.state_q01[:23], np.percentile(states, 1, axis=0), **rt)
    # padding: mean 0, std 1, q01 -1, q99 1
    assert (stats.action_mean[:, 23:] == 0).all() and (stats.action_std[:, 23:] == 1).all()
    assert (stats.action_q01[23:] == -1).all() and (stats.state_q99[23:] == 1).all()
    # correlation: L Lᵀ = seed correlation + ε I
    sigma = stats.correlation_cholesky @ stats.correlation_cholesky.T
    eps = stats.info["correlation_regularization"]
    np.testing.assert_allclose(sigma - eps * np.eye(960), seed_correlation(chunks), atol=1e-8)
    assert stats.task_mean_length == {0: 46.0, 1: 40.5}
    assert stats.task_num_stages == {0: 5, 1: 5}  # clip(ceil(mean/900), 5, 15)


def test_correlation_symmetric_pd_unit_diagonal(computed):
    root, stats = computed
    L = stats.correlation_cholesky
    assert L.shape == (960, 960) and np.allclose(L, np.tril(L))
    sigma = L @ L.T
    eps = stats.info["correlation_regularization"]
    np.testing.assert_allclose(sigma, sigma.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(sigma), 1.0 + eps, atol=1e-9)
    assert np.linalg.eigvalsh(sigma).min() > 0
    with np.load(root / layout.CORRELATION_FILE) as z:
        assert z["spatial"].shape == (32, 32) and z["temporal"].shape == (30, 30)
        np.testing.assert_allclose(np.diag(z["spatial"]), 1.0)
    # padded dims are independent unit noise (rows of the identity)
    pad = np.arange(960).reshape(30, 32)[:, 23:].ravel()
    np.testing.assert_allclose(sigma[pad][:, pad], np.eye(len(pad)) * (1 + eps), atol=1e-9)


def test_reproducible_across_processes(computed, tmp_path):
    """Same dataset + seed -> bit-identical stats, whatever PYTHONHASHSEED (the seed's bug, spec §3.1)."""
    root, stats = computed
    out = tmp_path / "copy"
    shutil.copytree(root, out)
    code = (
        "from behavior_lab.data.stats import compute_stats;"
        f"compute_stats({str(out)!r}, seed={SEED}, sample_fraction={FRACTION}, progress=False)"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    a = json.loads((root / layout.NORM_STATS_FILE).read_text())
    b = json.loads((out / layout.NORM_STATS_FILE).read_text())
    assert a == b


def test_caps_bound_the_samples(dataset_copy):
    stats = compute_stats(
        dataset_copy, sample_fraction=1.0, max_correlation_samples=10, max_quantile_samples=50, progress=False, write=False
    )
    assert stats.info["num_chunks"] == sum(n - 29 for n in (40, 52, 45, 36))
    assert stats.info["num_correlation_chunks"] == 10
    assert stats.info["num_action_quantile_rows"] == 50 and stats.info["num_state_quantile_rows"] == 50
    assert not (dataset_copy / "meta" / "never").exists()


def test_stage_table_and_no_delta(dataset_copy):
    stats = compute_stats(dataset_copy, delta_actions=False, stage_table={1: 9}, correlation=False, progress=False)
    assert stats.task_num_stages == {0: 5, 1: 9} and not stats.delta_mask.any()
    loaded = NormStats.load(dataset_copy)
    assert loaded.correlation_path is None
    with pytest.raises(DatasetError, match="without the action correlation"):
        loaded.correlation_cholesky


def test_load_from_checkpoint_dir_and_hash_check(computed, tmp_path):
    root, _ = computed
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    shutil.copy(root / layout.NORM_STATS_FILE, ckpt)
    shutil.copy(root / layout.CORRELATION_FILE, ckpt)
    stats = NormStats.load(ckpt)
    assert stats.correlation_cholesky.shape == (960, 960)
    assert stats.action_mean.shape == (30, 32) and stats.state_q99.shape == (32,)
    np.savez(ckpt / "action_correlation.npz", cholesky=np.eye(960))
    with pytest.raises(DatasetError, match="sha256"):
        NormStats.load(ckpt).correlation_cholesky
    with pytest.raises(DatasetError, match="behavior-lab stats"):
        NormStats.load(tmp_path / "nothing")


def test_stats_never_half_written(dataset_copy):
    """A bad episode aborts the pass before anything is written; old stats stay intact."""
    import pyarrow.parquet as pq

    before = {p: (dataset_copy / p).read_bytes() for p in (layout.NORM_STATS_FILE, layout.CORRELATION_FILE)}
    path = BehaviorDataset(dataset_copy).data_path(10001)
    table = pq.read_table(path).to_pandas()
    table.at[3, "action"] = np.full(23, np.inf, dtype=np.float32)
    table.to_parquet(path)
    with pytest.raises(DatasetError, match=r"episode_00010001.parquet.*'action'.*non-finite.*row 3"):
        compute_stats(dataset_copy, progress=False)
    for p, content in before.items():
        assert (dataset_copy / p).read_bytes() == content
    assert not list((dataset_copy / "meta").glob(".*tmp*"))


def test_per_timestep_std_floor_protects_near_constant_timesteps():
    import numpy as np

    from behavior_lab.data.stats import floor_per_timestep_std

    std = np.array([[0.0, 0.5], [1e-9, 0.4], [0.2, 0.0]])  # (t, d); dim 0 varies only at t=2
    np.testing.assert_array_equal(floor_per_timestep_std(std, 0.0), std)  # seed behaviour
    out = floor_per_timestep_std(std, 0.1)
    np.testing.assert_allclose(out[:, 0], [0.02, 0.02, 0.2])
    np.testing.assert_allclose(out[:, 1], [0.5, 0.4, 0.05])
    assert floor_per_timestep_std(np.zeros((2, 1)), 0.1).min() == 1e-3
