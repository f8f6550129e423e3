"""Each transform pair is an exact inverse; "off" is the identity (spec §8)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from behavior_lab.data import schema
from behavior_lab.data import transforms as T
from behavior_lab.data.stats import NormStats

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def stats(dataset_root) -> NormStats:
    return NormStats.load(dataset_root)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return {"state": rng.normal(size=23).astype(np.float32), "actions": rng.normal(size=(30, 23)).astype(np.float32)}


def test_delta_uses_seed_mask_and_chunk_start_state(data):
    out = T.DeltaActions()(data)
    m = schema.DELTA_ACTION_MASK
    np.testing.assert_allclose(out["actions"][:, m], data["actions"][:, m] - data["state"][m])
    np.testing.assert_array_equal(out["actions"][:, ~m], data["actions"][:, ~m])  # base, torso 4, grippers
    assert np.flatnonzero(~m).tolist() == [0, 1, 2, 6, 14, 22]  # spec §8.1
    back = T.AbsoluteActions()(out)
    np.testing.assert_allclose(back["actions"], data["actions"], **TOL)
    assert data["actions"] is not out["actions"]  # the input dict is not modified


def test_delta_batched(data):
    batch = {"state": np.stack([data["state"]] * 4), "actions": np.stack([data["actions"]] * 4)}
    out = T.DeltaActions()(batch)
    np.testing.assert_allclose(out["actions"][2], T.DeltaActions()(data)["actions"])


@pytest.mark.parametrize("mode", T.NORM_MODES)
def test_action_normalisation_inverse(stats, data, mode):
    norm = T.NormalizeActions.from_stats(stats, mode)
    unnorm = T.UnnormalizeActions.from_stats(stats, mode)
    for width in (23, 32):
        x = T.PadTo(width)(data)
        y = norm(x)
        np.testing.assert_allclose(unnorm(y)["actions"], x["actions"], **TOL)
    # shorter horizons use rows 0..k-1 of the per-timestep stats (inpainting, spec §8.2)
    short = {"state": data["state"], "actions": data["actions"][:7]}
    np.testing.assert_allclose(norm(short)["actions"], norm(data)["actions"][:7], **TOL)


def test_per_timestep_formula(stats, data):
    y = T.NormalizeActions.from_stats(stats)(data)["actions"]
    expect = (data["actions"] - stats.action_mean[:, :23]) / (stats.action_std[:, :23] + 1e-6)  # spec §8.2
    np.testing.assert_allclose(y, expect, **TOL)
    q = T.NormalizeActions.from_stats(stats, "quantile")(data)["actions"]
    q01, q99 = stats.action_q01[:23], stats.action_q99[:23]
    np.testing.assert_allclose(q, (data["actions"] - q01) / (q99 - q01 + 1e-6) * 2 - 1, **TOL)


@pytest.mark.parametrize("mode", ["global", "quantile"])
def test_state_normalisation_inverse(stats, data, mode):
    y = T.NormalizeState.from_stats(stats, mode)(data)
    np.testing.assert_allclose(T.UnnormalizeState.from_stats(stats, mode)(y)["state"], data["state"], **TOL)
    if mode == "global":
        np.testing.assert_allclose(y["state"], (data["state"] - stats.state_mean[:23]) / (stats.state_std[:23] + 1e-6), **TOL)


def test_pad_truncate_inverse(data):
    padded = T.PadTo(32)(data)
    assert padded["state"].shape == (32,) and padded["actions"].shape == (30, 32)
    assert not padded["actions"][:, 23:].any()
    back = T.TruncateTo(23)(padded)
    np.testing.assert_array_equal(back["actions"], data["actions"])
    np.testing.assert_array_equal(back["state"], data["state"])
    with pytest.raises(ValueError, match="cannot pad"):
        T.PadTo(16)(data)


def test_padding_dims_are_identity(stats):
    """Padded dims carry mean 0 / std 1 / q01 -1 / q99 1, so padded zeros stay ~zero."""
    x = {"state": np.zeros(32, np.float32), "actions": np.zeros((30, 32), np.float32)}
    for mode in T.NORM_MODES:
        y = T.NormalizeActions.from_stats(stats, mode)(x)["actions"][:, 23:]
        np.testing.assert_allclose(y, 0.0, atol=1e-5)


def test_off_is_identity(stats, data):
    offs = [
        T.DeltaActions(enabled=False),
        T.AbsoluteActions(enabled=False),
        T.NormalizeActions.from_stats(stats, enabled=False),
        T.UnnormalizeActions.from_stats(stats, enabled=False),
        T.NormalizeState.from_stats(stats, enabled=False),
        T.UnnormalizeState.from_stats(stats, enabled=False),
        T.PadTo(enabled=False),
        T.TruncateTo(enabled=False),
    ]
    for t in offs:
        assert t(data) is data


def test_transforms_are_frozen(stats):
    t = T.NormalizeActions.from_stats(stats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.mode = "global"
    with pytest.raises(ValueError, match="unknown action normalisation"):
        T.NormalizeActions.from_stats(stats, "minmax")


def test_full_training_and_serving_chain_inverts(stats, data):
    train = [T.DeltaActions(), T.NormalizeActions.from_stats(stats), T.PadTo(32)]
    serve = [T.UnnormalizeActions.from_stats(stats), T.AbsoluteActions(), T.TruncateTo(23)]
    y = T.apply(train, data)
    out = T.apply(serve, {"state": data["state"], "actions": y["actions"]})
    np.testing.assert_allclose(out["actions"], data["actions"], **TOL)
