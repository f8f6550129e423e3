"""FAST tokenizer (spec §7): codec, BPE fit, persistence, data-side tokens, dataset fit hook."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from behavior_lab.data import chunk_sampling, layout, schema
from behavior_lab.data.fast_samples import (
    FAST_PAD_ID,
    fast_tokens_for_chunk,
    fit_fast_tokenizer_from_dataset,
    iter_sampled_delta_chunks,
)
from behavior_lab.data.fast_tokenizer import (
    PAD_TOKEN,
    DctCodec,
    FastTokenizer,
    format_dims,
    parse_dims,
    token_length_stats,
)

H = schema.ACTION_HORIZON
SCALE = 10.0
# Rigorous reconstruction bound in normalised [-1, 1] units for chunks inside [q01, q99]: each of the
# H coefficients is off by at most 0.5/scale after rounding, and the orthonormal inverse DCT maps that
# error vector (L2 norm <= sqrt(H)*0.5/scale) to a per-sample error of at most the same norm.
QUANT_BOUND = math.sqrt(H) * 0.5 / SCALE  # 0.274
# Uniform rounding error has RMS step/sqrt(12) = (1/scale)/sqrt(12) = 0.0289 per coefficient, which
# an orthonormal transform preserves on average; zero-rounded coefficients of smooth data err less.
RMS_TOL_SMOOTH = 0.02  # measured 0.011
RMS_TOL_RANDOM_WALK = 0.035  # measured 0.0287
MAX_TOL_EMPIRICAL = 0.2  # measured 0.180 (smooth; at gripper steps) and 0.127 (random walk)
# BPE is lossless, so these errors come from the codec alone and do not depend on the fitted vocab.


# --- synthetic data ---------------------------------------------------------------------------------


def synthetic_episode(rng: np.random.Generator, T: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Robot-like (state, action), each (T, 23): pchip joint paths through random waypoints with holds,
    smooth sparse base velocities, gripper open/close steps smoothed over 9 frames; the state tracks
    the action with a 2-frame lag and 1 mrad noise."""
    t = np.arange(T)
    a = np.zeros((T, schema.ACTION_DIM))
    for d in list(range(3, 14)) + list(range(15, 22)):
        n_way = max(3, T // int(rng.integers(20, 60)))
        knots = np.sort(np.concatenate([[0, T - 1], rng.choice(np.arange(1, T - 1), n_way - 2, replace=False)]))
        vals = np.cumsum(rng.normal(0, 0.25, n_way)) + rng.uniform(-1, 1)
        for i in range(1, n_way):
            if rng.random() < 0.3:
                vals[i] = vals[i - 1]
        a[:, d] = PchipInterpolator(knots, vals)(t)
    for d in schema.BASE_VEL_DIMS:
        knots = np.linspace(0, T - 1, max(3, T // 90))
        a[:, d] = PchipInterpolator(knots, rng.normal(0, 0.2, len(knots)) * (rng.random(len(knots)) < 0.5))(t)
    for d in (schema.LEFT_GRIPPER_DIM, schema.RIGHT_GRIPPER_DIM):
        g = np.ones(T)
        for s in np.sort(rng.choice(T, 3, replace=False)):
            g[s:] *= -1
        a[:, d] = np.convolve(np.pad(g, 4, mode="edge"), np.ones(9) / 9, mode="valid")
    state = np.concatenate([a[:2], a[:-2]]) + rng.normal(0, 1e-3, a.shape)
    state[:, [schema.LEFT_GRIPPER_DIM, schema.RIGHT_GRIPPER_DIM]] = a[:, [schema.LEFT_GRIPPER_DIM, schema.RIGHT_GRIPPER_DIM]]
    return state.astype(np.float32), a.astype(np.float32)


def all_delta_chunks(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Every window of an episode as a delta chunk (spec §3.1 step 2, no sampling)."""
    starts = np.arange(max(0, len(action) - H + 1))
    return chunk_sampling.delta_chunks(state, action, starts, H, schema.DELTA_ACTION_MASK)


def smooth_chunks(seed: int, n_episodes: int, T: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([all_delta_chunks(*synthetic_episode(rng, T)) for _ in range(n_episodes)])


def random_walk_chunks(seed: int, n: int) -> np.ndarray:
    """Gaussian random walks from 0 with per-dim step std in [0.01, 0.05]: rough, broadband chunks."""
    rng = np.random.default_rng(seed)
    sigma = np.random.default_rng(1234).uniform(0.01, 0.05, schema.ACTION_DIM)
    return np.cumsum(rng.normal(0, 1, (n, H, schema.ACTION_DIM)) * sigma, axis=1)


def quantiles(chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = chunks.reshape(-1, chunks.shape[-1])
    return np.percentile(flat, 1, axis=0), np.percentile(flat, 99, axis=0)


@pytest.fixture(scope="module")
def smooth_data():
    train = smooth_chunks(0, 40)[::8]
    q01, q99 = quantiles(train)
    return train, smooth_chunks(99, 8), q01, q99


@pytest.fixture(scope="module")
def smooth_tok(smooth_data):
    train, _, q01, q99 = smooth_data
    return FastTokenizer.fit(train, q01, q99)


def normalised_errors(tok: FastTokenizer, chunks: np.ndarray) -> np.ndarray:
    """|decode(encode(x)) - clip(x)| in [-1, 1] units, (N, H, D)."""
    rec = np.stack([tok.decode(ids) for ids in tok.encode_batch(chunks)])
    x = np.clip(chunks[..., list(tok.dims)], tok.codec.q01, tok.codec.q99)
    return np.abs(rec - x) * 2.0 / (tok.codec.q99 - tok.codec.q01)


# --- dims parsing --------------------------------------------------------------------------------------


def test_parse_default_dims_skips_torso_joint_4():
    dims = parse_dims("0:6,7:23")
    assert dims == tuple(range(6)) + tuple(range(7, 23))
    assert len(dims) == 22 and 6 not in dims  # spec §7.1
    assert format_dims(dims) == "0:6,7:23"


def test_parse_dims_forms():
    assert parse_dims(" 3 , 0:2 ") == (3, 0, 1)
    assert parse_dims([5, 1]) == (5, 1)
    assert parse_dims("0:40", action_dim=None) == tuple(range(40))
    assert format_dims((0, 1, 2, 5, 7, 8)) == "0:3,5,7:9"


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "empty"),
        ("0:6,,7:9", "empty item"),
        ("a:3", "not an integer"),
        ("1.5", "not an integer"),
        ("6:6", "range '6:6' is empty"),
        ("5:3", "start must be < stop"),
        ("1:2:3", "more than one ':'"),
        ("-1", "negative"),
        ("0:24", r"\[23\] out of range for a 23-D action"),
        ("0:6,5:8", r"\[5\] listed more than once"),
        ([], "empty"),
    ],
)
def test_parse_dims_errors_are_clear(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_dims(spec)


# --- codec ---------------------------------------------------------------------------------------------


def test_codec_normalisation_and_alphabet_bound():
    q01, q99 = -np.ones(23), 3 * np.ones(23)
    codec = DctCodec.create(q01, q99)
    x = np.zeros((H, 23))
    x[:, 0] = np.linspace(-5, 5, H)  # clipped at both ends
    y = codec.normalize(x)
    assert y.shape == (H, 22)
    np.testing.assert_allclose(y[:, 1], -0.5)  # 2(0 - (-1))/4 - 1
    assert y[:, 0].min() == -1.0 and y[:, 0].max() == 1.0
    assert codec.max_abs_code == math.ceil(10 * math.sqrt(30)) == 55 and codec.alphabet_size == 111
    # Extreme chunks (all at q01 / all at q99) reach the bound, never exceed it.
    lo, hi = codec.to_codes(np.full((H, 23), -9.0)), codec.to_codes(np.full((H, 23), 9.0))
    assert lo.min() == -55 and hi.max() == 55


def test_codes_are_frequency_major_like_fast():
    """Flattening (H, D) row-major puts the D frequency-0 coefficients first (HF FAST order)."""
    codec = DctCodec.create(-np.ones(23), np.ones(23))
    x = np.zeros((H, 23))
    x[:, 3] = 0.5  # constant on encoded dim 3 -> only its DC coefficient is non-zero
    codes = codec.to_codes(x)
    assert np.flatnonzero(codes).tolist() == [3]
    assert codes[3] == round(10 * 0.5 * math.sqrt(H))


def test_exact_reconstruction_of_representable_chunks():
    q01, q99 = -2 * np.ones(23), 2 * np.ones(23)
    codec = DctCodec.create(q01, q99)
    mid = np.zeros((H, 23))
    np.testing.assert_array_equal(codec.from_codes(codec.to_codes(mid)), mid[:, list(codec.dims)])
    # All at q01: DC = -sqrt(30)*10 = -54.8 -> -55 decodes to -1.004, clipped back to exactly -1 (q01).
    low = np.full((H, 23), -2.0)
    np.testing.assert_allclose(codec.from_codes(codec.to_codes(low)), -2.0)


def test_codec_rejects_bad_input():
    codec = DctCodec.create(np.zeros(23), np.ones(23))
    with pytest.raises(ValueError, match="horizon 20"):
        codec.to_codes(np.zeros((20, 23)))
    with pytest.raises(ValueError, match="needs at least 23"):
        codec.to_codes(np.zeros((H, 22)))
    bad = np.zeros((H, 23))
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        codec.to_codes(bad)
    with pytest.raises(ValueError, match="q01 shape"):
        DctCodec.create(np.zeros(23), np.ones(22))
    with pytest.raises(ValueError, match="out of range"):
        DctCodec.create(np.zeros(22), np.ones(22))  # default dims need 23 entries


# --- fit / encode / decode ---------------------------------------------------------------------------


def test_vocab_and_pad_reservation(smooth_tok, smooth_data):
    assert smooth_tok.vocab_size == 1024
    vocab, merges = smooth_tok.vocab_and_merges()
    assert vocab[PAD_TOKEN] == 0 and vocab["\x00"] == 1
    assert len(merges) == 1024 - 1 - 111
    ids = np.concatenate([np.asarray(t) for t in smooth_tok.encode_batch(smooth_data[1][:500])])
    assert ids.min() >= 1 and ids.max() < 1024  # pad/BOS id 0 is never a real token (spec §7.3)


def test_reconstruction_smooth(smooth_tok, smooth_data):
    err = normalised_errors(smooth_tok, smooth_data[1])
    assert err.max() <= QUANT_BOUND
    assert err.max() <= MAX_TOL_EMPIRICAL
    assert np.sqrt((err**2).mean()) <= RMS_TOL_SMOOTH


def test_reconstruction_random_walk():
    train, test = random_walk_chunks(0, 1000), random_walk_chunks(1, 500)
    q01, q99 = quantiles(train)
    tok = FastTokenizer.fit(train, q01, q99)
    err = normalised_errors(tok, test)
    assert err.max() <= QUANT_BOUND
    assert err.max() <= MAX_TOL_EMPIRICAL
    assert np.sqrt((err**2).mean()) <= RMS_TOL_RANDOM_WALK


def test_out_of_range_values_decode_to_the_clip(smooth_tok):
    x = np.zeros((H, 23))
    x[:, 7] = 100.0
    rec = smooth_tok.decode(smooth_tok.encode(x))
    j = smooth_tok.dims.index(7)
    assert np.abs(rec[:, j] - smooth_tok.codec.q99[j]).max() <= QUANT_BOUND * (smooth_tok.codec.q99[j] - smooth_tok.codec.q01[j]) / 2


def test_fit_is_deterministic_and_order_independent(smooth_data):
    train, _, q01, q99 = smooth_data
    train = train[:800]
    a = FastTokenizer.fit(train, q01, q99)
    b = FastTokenizer.fit(train, q01, q99)
    c = FastTokenizer.fit(train[np.random.default_rng(3).permutation(len(train))], q01, q99)
    assert a.vocab_and_merges() == b.vocab_and_merges() == c.vocab_and_merges()
    assert a.fingerprint() == b.fingerprint() == c.fingerprint()
    d = FastTokenizer.fit(train[: len(train) // 2], q01, q99)
    assert d.fingerprint() != a.fingerprint()


def test_decode_is_robust_to_malformed_sequences(smooth_tok, smooth_data):
    chunk = smooth_data[1][0]
    ids = smooth_tok.encode(chunk)
    codes, ok = smooth_tok.decode_codes(ids)
    assert ok and codes.shape == (H * 22,)
    assert smooth_tok.decode_codes(ids + [0, 0, 0])[1]  # trailing padding is well formed
    for bad in (ids[:-3], ids + ids, [5000] + ids, [-1], ids[:2] + [0] + ids[2:], []):
        codes, ok = smooth_tok.decode_codes(bad)
        assert not ok and codes.shape == (H * 22,)
        out = smooth_tok.decode(bad)
        assert out.shape == (H, 22) and np.all(np.isfinite(out))
    # A truncated sequence keeps its leading (low-frequency) coefficients and zero-fills the rest.
    short = smooth_tok.decode_codes(ids[: len(ids) // 2])[0]
    full = smooth_tok.decode_codes(ids)[0]
    n = np.flatnonzero(short != full)
    assert n.size == 0 or np.all(short[n.min():] == 0)
    # Empty input decodes to the midpoint of [q01, q99].
    np.testing.assert_allclose(smooth_tok.decode([]), (smooth_tok.codec.q01 + smooth_tok.codec.q99) / 2 + np.zeros((H, 22)))


def test_fit_errors(smooth_data):
    train, _, q01, q99 = smooth_data
    with pytest.raises(ValueError, match="must exceed the alphabet of 111"):
        FastTokenizer.fit(train, q01, q99, vocab_size=100)
    with pytest.raises(ValueError, match="non-empty batch"):
        FastTokenizer.fit(train[:0], q01, q99)
    with pytest.raises(ValueError, match="unknown pretokenizer 'bytes'"):
        FastTokenizer.fit(train, q01, q99, pretokenizer="bytes")


def test_byte_level_mode_roundtrip(smooth_data, tmp_path):
    """The HF-FAST-like pre-tokeniser: same codes, a different segmentation."""
    train, test, q01, q99 = smooth_data
    tok = FastTokenizer.fit(train, q01, q99, pretokenizer="byte_level")
    err = normalised_errors(tok, test[:300])
    assert err.max() <= QUANT_BOUND
    for chunk in test[:50]:
        codes, ok = tok.decode_codes(tok.encode(chunk))
        assert ok
        np.testing.assert_array_equal(codes, tok.codec.to_codes(chunk))
    ids = tok.encode(test[0])
    for bad in ([1], [1, 2, 3] + ids, ids[:3], [0, 7] + ids, [4096]):
        codes, ok = tok.decode_codes(bad)
        assert not ok and codes.shape == (H * 22,)
    loaded = FastTokenizer.load(tok.save(tmp_path / "bl"))

    assert loaded.encode_batch(test[:50]) == tok.encode_batch(test[:50])


def test_no_pad_reservation_keeps_raw_alphabet_at_id_0(smooth_data):
    train, _, q01, q99 = smooth_data
    tok = FastTokenizer.fit(train, q01, q99, reserve_pad_id=False)
    assert tok.vocab_and_merges()[0]["\x00"] == 0


# --- persistence ---------------------------------------------------------------------------------------


def test_save_load_roundtrip(smooth_tok, smooth_data, tmp_path):
    d = smooth_tok.save(tmp_path / "fast")
    assert sorted(p.name for p in d.iterdir()) == ["bpe.json", "fast_tokenizer.json"]  # no temp files left
    loaded = FastTokenizer.load(d)
    assert loaded.fingerprint() == smooth_tok.fingerprint()
    test = smooth_data[1][:300]
    assert loaded.encode_batch(test) == smooth_tok.encode_batch(test)
    ids = smooth_tok.encode(test[0])
    np.testing.assert_array_equal(loaded.decode(ids), smooth_tok.decode(ids))
    meta = json.loads((d / "fast_tokenizer.json").read_text())
    assert meta["dims"] == "0:6,7:23" and meta["scale"] == 10.0 and meta["horizon"] == 30


def test_load_errors(smooth_tok, tmp_path):
    with pytest.raises(FileNotFoundError, match="fast_tokenizer.json missing"):
        FastTokenizer.load(tmp_path / "nothing")
    d = smooth_tok.save(tmp_path / "fast")
    (d / "bpe.json").write_text((d / "bpe.json").read_text().replace('"merges"', '"merges" ', 1))
    with pytest.raises(ValueError, match="half-written"):
        FastTokenizer.load(d)
    (d / "fast_tokenizer.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        FastTokenizer.load(d)


# --- data side (spec §7.2) -------------------------------------------------------------------------------


def test_fast_tokens_padding(smooth_tok, smooth_data):
    chunk = smooth_data[1][0]
    ids = smooth_tok.encode(chunk)
    assert len(ids) < 200
    tokens, mask = fast_tokens_for_chunk(smooth_tok, chunk)
    assert tokens.shape == (200,) and tokens.dtype == np.int64 and mask.dtype == bool
    assert mask.sum() == len(ids) and mask[: len(ids)].all()
    assert tokens[: len(ids)].tolist() == ids
    assert np.all(tokens[len(ids):] == FAST_PAD_ID)


def test_fast_tokens_truncation(smooth_tok, smooth_data):
    chunk = smooth_data[1][0]
    ids = smooth_tok.encode(chunk)
    tokens, mask = fast_tokens_for_chunk(smooth_tok, chunk, max_fast_tokens=5)
    assert tokens.tolist() == ids[:5] and mask.all()
    with pytest.raises(ValueError, match="max_fast_tokens"):
        fast_tokens_for_chunk(smooth_tok, chunk, max_fast_tokens=0)


def test_fast_tokens_from_normalised_padded_chunk(smooth_tok, smooth_data):
    """Spec §7.2: the sample's (30, 32) per-timestep-normalised actions are denormalised first."""
    raw = smooth_data[1][3]
    rng = np.random.default_rng(0)
    mean = np.zeros((H, 32))
    std = np.ones((H, 32))
    mean[:, :23] = rng.normal(0, 0.1, (H, 23))
    std[:, :23] = rng.uniform(0.05, 0.5, (H, 23))
    padded = np.zeros((H, 32))
    padded[:, :23] = raw
    normalised = (padded - mean) / (std + 1e-6)
    a = fast_tokens_for_chunk(smooth_tok, raw)
    b = fast_tokens_for_chunk(smooth_tok, normalised, action_mean=mean, action_std=std)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="both action_mean and action_std"):
        fast_tokens_for_chunk(smooth_tok, normalised, action_mean=mean)


def test_token_length_stats(smooth_tok, smooth_data):
    test = smooth_data[1][:400]
    stats = token_length_stats(smooth_tok, test)
    lengths = [len(smooth_tok.encode(c)) for c in test]
    assert stats["n"] == 400 and stats["max"] == max(lengths) and stats["min"] == min(lengths)
    assert stats["mean"] == pytest.approx(np.mean(lengths))
    assert stats["mean"] <= stats["p95"] <= stats["max"]
    assert stats["frac_truncated"] == 0.0 and stats["symbols_per_chunk"] == 660


# --- chunk building and the dataset hook (spec §3.1, §7.1) -------------------------------------------------


def test_sampled_chunks_are_the_stats_sample(tiny_dataset):
    """The FAST fit sees the chunks `compute_stats` samples: same rule, same per-episode generator."""
    from behavior_lab.data.reader import BehaviorDataset

    root, episodes, _ = tiny_dataset
    got = dict(iter_sampled_delta_chunks(BehaviorDataset(root, cameras=()), seed=5, sample_fraction=0.1))
    assert sorted(got) == sorted(episodes)
    for ep, (state, action) in episodes.items():
        n = max(0, len(action) - H + 1)
        assert len(got[ep]) == (max(1, int(n * 0.1)) if n else 0)  # spec §3.1 step 3
        starts = chunk_sampling.sampled_starts(len(action), H, 0.1, 5, ep)
        for chunk, i in zip(got[ep], starts):
            k = 11
            expect = np.where(schema.DELTA_ACTION_MASK, action[i + k] - state[i], action[i + k])
            np.testing.assert_allclose(chunk[k], expect, atol=1e-6)
    with pytest.raises(ValueError, match="sample_fraction"):
        next(iter_sampled_delta_chunks(BehaviorDataset(root, cameras=()), seed=5, sample_fraction=0.0))


def _proprio_from_state(state: np.ndarray) -> np.ndarray:
    """Inverse of schema.extract_state_from_proprio (each finger gets half the width)."""
    I = schema.PROPRIO_INDICES
    p = np.zeros((len(state), schema.PROPRIO_DIM), dtype=np.float32)
    p[:, I["base_qvel"]] = state[:, 0:3]
    p[:, I["trunk_qpos"]] = state[:, 3:7]
    p[:, I["arm_left_qpos"]] = state[:, 7:14]
    p[:, I["arm_right_qpos"]] = state[:, 15:22]
    for dim, key in ((14, "gripper_left_qpos"), (22, "gripper_right_qpos")):
        width = (state[:, dim] + 1.0) / 2.0 * schema.GRIPPER_MAX_WIDTH
        p[:, I[key]] = (width / 2.0)[:, None]
    return p


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from behavior_lab.data.writer import DatasetWriter

    root = tmp_path_factory.mktemp("fastds") / "ds"
    rng = np.random.default_rng(7)
    episodes = {}
    with DatasetWriter(root) as w:
        for task, T in ((0, 150), (0, 120), (3, 200), (3, 25)):
            state, action = synthetic_episode(rng, T)
            state[:, [14, 22]] = np.clip(state[:, [14, 22]], -1, 1)
            proprio = _proprio_from_state(state)
            np.testing.assert_allclose(schema.extract_state_from_proprio(proprio), state, atol=1e-5)
            ep = w.add_episode(
                task,
                {
                    schema.DATASET_STATE_KEY: proprio,
                    schema.DATASET_CAM_REL_POSES_KEY: np.zeros((T, 21), np.float32),
                    schema.DATASET_ACTION_KEY: action,
                    schema.DATASET_RGB_KEYS[0]: np.zeros((T, 16, 16, 3), np.uint8),
                },
            )
            episodes[ep] = (schema.extract_state_from_proprio(proprio), action)
    all_chunks = np.concatenate([all_delta_chunks(s, a) for s, a in episodes.values()])
    q01, q99 = quantiles(all_chunks)
    stats = {"action_q01": np.concatenate([q01, np.zeros(9)]), "action_q99": np.concatenate([q99, np.ones(9)])}
    return root, episodes, stats


def test_fit_from_dataset(tiny_dataset):
    from behavior_lab.data.reader import BehaviorDataset

    root, episodes, stats = tiny_dataset
    tok = fit_fast_tokenizer_from_dataset(root, stats, seed=3, sample_fraction=0.5, vocab_size=400)
    saved = root / layout.FAST_TOKENIZER_DIR
    assert (saved / "fast_tokenizer.json").is_file()
    assert FastTokenizer.load(saved).fingerprint() == tok.fingerprint()
    # Same seed -> identical tokenizer; the fit equals fitting the same sampled chunks by hand.
    again = fit_fast_tokenizer_from_dataset(root, stats, seed=3, sample_fraction=0.5, vocab_size=400, save=False)
    assert again.fingerprint() == tok.fingerprint()
    by_hand = [chunks for _, chunks in iter_sampled_delta_chunks(BehaviorDataset(root, cameras=()), 3, 0.5)]
    manual = FastTokenizer.fit(np.concatenate(by_hand), stats["action_q01"], stats["action_q99"], vocab_size=400)
    assert manual.fingerprint() == tok.fingerprint()
    other = fit_fast_tokenizer_from_dataset(root, stats, seed=4, sample_fraction=0.5, vocab_size=400, save=False)
    assert other.fingerprint() != tok.fingerprint()
    # Task selection and the chunk cap.
    only3 = fit_fast_tokenizer_from_dataset(root, stats, seed=3, tasks=[3], max_chunks=5, vocab_size=400, save=False)
    assert only3.vocab_size <= 400
    absolute = fit_fast_tokenizer_from_dataset(
        root, stats, seed=3, sample_fraction=0.5, vocab_size=400, delta_mask=np.zeros(23, bool), save=False
    )
    assert absolute.fingerprint() != tok.fingerprint()  # spec §8.2: all-absolute actions change the fit


def test_fit_from_dataset_needs_quantiles(tiny_dataset):
    root, _, _ = tiny_dataset
    with pytest.raises(ValueError, match="action_q01/action_q99"):
        fit_fast_tokenizer_from_dataset(root, {"action_mean": np.zeros(32)}, save=False)


def test_fit_uses_the_chunks_compute_stats_samples(tiny_dataset):
    """Seam with `behavior-lab stats`: its chunk_sink receives the chunks our fit iterates over."""
    from behavior_lab.data.reader import BehaviorDataset
    from behavior_lab.data.stats import compute_stats

    root, _, _ = tiny_dataset
    sunk: list[np.ndarray] = []
    stats = compute_stats(root, seed=11, correlation=False, chunk_sink=sunk.append, write=False, progress=False)
    ours = [c for _, c in iter_sampled_delta_chunks(BehaviorDataset(root, cameras=()), 11) if len(c)]
    np.testing.assert_array_equal(np.concatenate(sunk), np.concatenate(ours))
    tok = fit_fast_tokenizer_from_dataset(root, stats, seed=11, vocab_size=300, save=False)
    assert tok.fingerprint() == FastTokenizer.fit(np.concatenate(sunk), stats.action_q01, stats.action_q99,
                                                  vocab_size=300).fingerprint()


def test_chunk_cap_is_a_seeded_subset_of_the_sample(tiny_dataset):
    from behavior_lab.data.reader import BehaviorDataset

    root, _, _ = tiny_dataset
    ds = BehaviorDataset(root, cameras=())
    full = {ep: c for ep, c in iter_sampled_delta_chunks(ds, 9, 0.5)}
    capped = {ep: c for ep, c in iter_sampled_delta_chunks(ds, 9, 0.5, max_chunks=20)}
    again = {ep: c for ep, c in iter_sampled_delta_chunks(ds, 9, 0.5, max_chunks=20)}
    assert sum(len(c) for c in capped.values()) == 20
    for ep, chunks in capped.items():
        np.testing.assert_array_equal(chunks, again[ep])
        assert all(any(np.array_equal(c, f) for f in full[ep]) for c in chunks)
