"""Exact-output tests of the runtime components on constructed inputs (spec §6.4, §9.1, §10, §11)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import interp1d

from behavior_lab.policy.config import (
    CorrectionsConfig,
    GateConfig,
    InpaintingConfig,
    RuntimeConfig,
    SplineConfig,
    VotingConfig,
)
from behavior_lab.policy.corrections import GripperCorrector
from behavior_lab.policy.inpainting import InpaintingBuffer
from behavior_lab.policy.spline import GripperVariationGate, SplineCompressor
from behavior_lab.policy.stage_voter import StageVoter

EXACT = 1e-9  # spline reproduction of a cubic: float64 round-off only


# --- spline compression (spec §10) ----------------------------------------------------------------
def _cubic_chunk(h=30):
    k = np.arange(h, dtype=np.float64)[:, None]
    d = np.arange(23, dtype=np.float64)[None, :]
    return 0.1 * d + 0.02 * k - 0.003 * (d % 5) * k**2 + 1e-4 * k**3  # each dim a cubic in k


def test_spline_reproduces_cubics_at_linspace_0_25_20_and_scales_base_velocity():
    comp = SplineCompressor(SplineConfig(), execute_in_n_steps=20)
    chunk = _cubic_chunk()
    out = comp.compress(chunk)
    t = np.linspace(0, 25, 20)[:, None]  # spec §10: 20 points, spacing 25/19
    d = np.arange(23, dtype=np.float64)[None, :]
    expected = 0.1 * d + 0.02 * t - 0.003 * (d % 5) * t**2 + 1e-4 * t**3
    expected[:, :3] *= 26 / 20  # spec §10: base velocity x 1.3
    assert out.shape == (20, 23)
    np.testing.assert_allclose(out, expected, rtol=0, atol=EXACT)
    assert comp.speed_factor == pytest.approx(1.3)


def test_spline_matches_scipy_interp1d_cubic_on_random_data():
    rng = np.random.default_rng(3)
    chunk = rng.normal(size=(30, 23))
    out = SplineCompressor(SplineConfig(velocity_rescale=False), 20).compress(chunk)
    src, dst = np.arange(26), np.linspace(0, 25, 20)
    ref = np.stack([interp1d(src, chunk[:26, d], kind="cubic")(dst) for d in range(23)], axis=1)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    # endpoints are the first and the 26th action
    np.testing.assert_allclose(out[0], chunk[0], atol=1e-12)
    np.testing.assert_allclose(out[-1], chunk[25], atol=1e-12)


def test_spline_inactive_when_off_or_not_fewer_steps():
    assert not SplineCompressor(SplineConfig(enabled=False), 20).active
    assert not SplineCompressor(SplineConfig(actions_to_execute=20), 20).active
    assert SplineCompressor(SplineConfig(), 20).active


# --- gripper gate (spec §10 step 1) ---------------------------------------------------------------
@pytest.mark.parametrize(
    "dim,rng_,allowed", [(14, 0.2, True), (14, 0.2001, False), (22, 0.2001, False), (22, 0.19, True)]
)
def test_gripper_gate_threshold_is_strict(dim, rng_, allowed):
    a = np.zeros((30, 23))
    a[:26, dim] = np.linspace(0.5, 0.5 + rng_, 26)
    gate = GripperVariationGate(GateConfig(), num_actions=26)
    assert gate.allows_compression(a) is allowed


def test_gripper_gate_looks_only_at_executed_actions_and_off_allows():
    a = np.zeros((30, 23))
    a[26:, 14] = -1.0  # a gripper move after action 26 does not count
    gate = GripperVariationGate(GateConfig(), num_actions=26)
    assert gate.allows_compression(a)
    a[25, 14] = -1.0
    assert not gate.allows_compression(a)
    assert GripperVariationGate(GateConfig(enabled=False), 26).allows_compression(a)


# --- stage voting (spec §6.4) ---------------------------------------------------------------------
def _vote(voter, preds, S=10):
    out = []
    for p in preds:
        logits = np.full(15, -1.0)
        logits[p] = 1.0
        out.append(voter.update(logits, S))
    return out


def test_voting_needs_full_history_and_two_votes_to_promote():
    v = StageVoter(VotingConfig())
    assert _vote(v, [1, 1]) == [0, 0]  # history not yet full
    assert _vote(v, [0]) == [1]  # [1, 1, 0]: 2 votes for n = 1 -> promote, history cleared
    assert list(v.history) == []
    assert _vote(v, [2, 5, 3]) == [1, 1, 1]  # 1 vote for 2 only
    assert _vote(v, [2]) == [1]  # FIFO [5, 3, 2]: still 1 vote
    assert _vote(v, [2]) == [2]  # FIFO [3, 2, 2]


def test_voting_skip_rule_advances_by_one_only():
    v = StageVoter(VotingConfig())
    assert _vote(v, [2, 2, 2]) == [0, 0, 1]  # all three = n + 1: skip case, +1 only
    v2 = StageVoter(VotingConfig())
    assert _vote(v2, [2, 2, 0]) == [0, 0, 0]  # skip needs all three
    v3 = StageVoter(VotingConfig(allow_skip=False))
    assert _vote(v3, [2, 2, 2]) == [0, 0, 0]


def test_voting_back_rule_and_jumps_ignored():
    v = StageVoter(VotingConfig())
    v.set_stage(4)
    assert _vote(v, [3, 3, 7]) == [4, 4, 4]  # back needs all three; 7 is ignored
    assert _vote(v, [3]) == [4]  # FIFO [3, 7, 3]
    assert _vote(v, [3, 3]) == [4, 3]  # FIFO [7, 3, 3] (2 votes: not enough), then [3, 3, 3]
    v0 = StageVoter(VotingConfig())
    assert _vote(v0, [9, 9, 9, 9]) == [0, 0, 0, 0]  # predictions 2+ stages away never move it


def test_voting_back_rule_exact_sequence():
    v = StageVoter(VotingConfig())
    v.set_stage(4)
    assert _vote(v, [3, 3, 3]) == [4, 4, 3]


def test_voting_last_stage_is_absorbing_and_predictions_clipped():
    v = StageVoter(VotingConfig())
    v.set_stage(4)
    assert _vote(v, [3, 3, 3], S=5) == [4, 4, 4]  # last stage: no going back (spec §6.4)
    v2 = StageVoter(VotingConfig())
    v2.set_stage(3)
    assert _vote(v2, [14, 14, 14], S=5) == [3, 3, 4]  # 14 clipped to S-1 = 4 = n


def test_voting_modes_argmax_fixed_off():
    a = StageVoter(VotingConfig(mode="argmax"))
    assert _vote(a, [3, 7, 2]) == [3, 7, 2]
    f = StageVoter(VotingConfig(mode="fixed", fixed_stage=2))
    assert _vote(f, [5, 5, 5]) == [2, 2, 2]
    off = StageVoter(VotingConfig(enabled=False))
    assert _vote(off, [1, 1, 1]) == [0, 0, 0]
    o = StageVoter(VotingConfig(mode="oracle"))
    o.observe_oracle(12, num_stages=5)
    assert o.current_stage == 4


# --- correction rules (spec §11) ------------------------------------------------------------------
def _state(left=1.0, right=1.0):
    s = np.arange(23, dtype=np.float64) * 0.01
    s[14], s[22] = left, right
    return s


def _expected_hold(state, open_left=False, open_right=False, h=30):
    e = np.tile(state, (h, 1))
    if open_left:
        e[:, 14] = 1.0
    if open_right:
        e[:, 22] = 1.0
    return e


CHUNK = np.full((30, 23), 0.5)


@pytest.mark.parametrize(
    "task,stage,left,right,fix_left,fix_right",
    [
        (1, 0, -0.99, 1.0, True, False),  # always-open left
        (1, 0, 1.0, -0.99, False, True),  # always-open right
        (1, 0, -0.99, -0.99, True, True),
        (1, 0, -0.98, 1.0, False, False),  # -0.98 is not "closed" (strict <)
        (30, 0, -0.99, -0.99, True, True),  # 30: left always open, right needs stage >= 6
        (30, 6, -0.99, -0.99, True, False),
        (38, 0, 1.0, -0.99, False, False),  # spraying: right never corrected
        (39, 0, -0.99, -0.99, True, False),
        (41, 13, -0.99, -0.99, True, True),  # 41: L, R >= 14
        (41, 14, -0.99, -0.99, False, False),
        (46, 7, -0.99, 1.0, True, False),  # 46: L >= 8
        (49, 13, -0.99, -0.99, True, True),  # 49: L >= 14; right always open
        (49, 14, -0.99, -0.99, False, True),
        (0, 1, -0.99, -0.99, True, True),  # radio task, stage < 2: general rule via min stage 2
    ],
)
def test_general_gripper_rule(task, stage, left, right, fix_left, fix_right):
    state = _state(left, right)
    c = GripperCorrector(CorrectionsConfig()).apply(task, stage, state, CHUNK)
    assert c.stage == stage
    if fix_left or fix_right:
        assert c.rule == "general_gripper"
        np.testing.assert_array_equal(c.actions, _expected_hold(state, fix_left, fix_right))
    else:
        assert c.rule is None
        assert c.actions is CHUNK


def test_radio_rule_stage4_goes_to_2_and_opens_closed_gripper():
    corr = GripperCorrector(CorrectionsConfig())
    # left closed, right open (not middle) -> hold state, open left, stage 4 -> 2
    state = _state(-0.99, 0.95)
    c = corr.apply(0, 4, state, CHUNK)
    assert (c.rule, c.stage) == ("radio", 2)
    np.testing.assert_array_equal(c.actions, _expected_hold(state, open_left=True))
    # left closed, right in the middle -> no gripper change; only the stage changes: original actions
    c = corr.apply(0, 4, _state(-0.99, 0.0), CHUNK)
    assert (c.rule, c.stage) == ("radio", 2) and c.actions is CHUNK
    # stage 3, both grippers closed -> both opened (neither is "middle"), stage kept
    state = _state(-0.99, -0.99)
    c = corr.apply(0, 3, state, CHUNK)
    assert (c.rule, c.stage) == ("radio", 3)
    np.testing.assert_array_equal(c.actions, _expected_hold(state, True, True))
    # stage 3, nothing to do -> falls through to the general rule, which allows closure at >= 2
    c = corr.apply(0, 3, _state(-0.99, 0.0), CHUNK)
    assert c.rule is None and c.stage == 3 and c.actions is CHUNK


def test_radio_rule_off_and_corrections_off():
    c = GripperCorrector(CorrectionsConfig(radio_rule=False)).apply(0, 4, _state(-0.99, 0.95), CHUNK)
    assert c.rule is None and c.stage == 4  # general rule: stage 4 >= 2 allows closure
    c = GripperCorrector(CorrectionsConfig(enabled=False)).apply(1, 0, _state(-0.99, -0.99), CHUNK)
    assert c.rule is None and c.actions is CHUNK


def test_seed_tables_match_spec():
    cfg = CorrectionsConfig()
    assert set(range(50)) - set(cfg.always_open_left) == {0, 41, 46, 49}
    assert set(cfg.always_open_right) == set(range(1, 30)) | {34, 35, 36, 37, 42, 43, 44, 47, 48, 49}
    assert cfg.min_stage_for_closure[33] == {"right": 11}


# --- inpainting buffer (spec §9.1) ----------------------------------------------------------------
def test_inpainting_buffer_keeps_absolute_actions_after_executed():
    chunk = np.arange(30 * 23, dtype=np.float64).reshape(30, 23)
    buf = InpaintingBuffer(InpaintingConfig())
    buf.store(chunk, 26)
    np.testing.assert_array_equal(buf.take(), chunk[26:30])
    buf.store(chunk, 20)
    np.testing.assert_array_equal(buf.take(), chunk[20:24])
    buf.reset()
    assert buf.take() is None
    off = InpaintingBuffer(InpaintingConfig(enabled=False))
    off.store(chunk, 20)
    assert off.take() is None


# --- config ---------------------------------------------------------------------------------------
def test_runtime_config_from_cfg_and_innovation_switches():
    cfg = RuntimeConfig.from_cfg(
        {
            "policy": {"spline": {"actions_to_execute": 24}, "voting": {"history_len": 5, "votes_to_promote": 3}},
            "innovation": {"spline_speedup": {"enabled": False}, "system2": {"enabled": False}},
        }
    )
    assert cfg.spline.actions_to_execute == 24 and not cfg.spline.enabled
    assert cfg.voting.history_len == 5 and not cfg.voting.enabled
    with pytest.raises(KeyError, match="valid keys"):
        RuntimeConfig.from_cfg({"policy": {"spline": {"actions": 3}}})
    with pytest.raises(ValueError, match="exceed the horizon"):
        RuntimeConfig.from_cfg({"policy": {"spline": {"actions_to_execute": 28}}})
    with pytest.raises(ValueError, match="valid modes"):
        VotingConfig(mode="majority")


def test_explicit_policy_override_shadowed_by_an_innovation_key_is_an_error():
    """`policy.spline.enabled=false` next to innovation.spline_speedup.enabled=true would be silently
    ignored (the innovation switch wins): an error names the key to set instead."""
    composed = {"policy": {"spline": {"enabled": False}, "replan": {"execute_in_n_steps": 10},
                           "voting": {"mode": "argmax"}},
                "innovation": {"spline_speedup": {"enabled": True, "execute_in_n_steps": 20}}}
    with pytest.raises(ValueError, match=r"policy.spline.enabled=false: .*innovation.spline_speedup.enabled=true"
                                         r".*innovation/spline_speedup=off"):
        RuntimeConfig.from_cfg(composed, explicit=["policy.spline.enabled=false"])
    with pytest.raises(ValueError, match=r"set innovation.spline_speedup.execute_in_n_steps instead"):
        RuntimeConfig.from_cfg(composed, explicit=["+policy.replan.execute_in_n_steps=10"])
    # keys no innovation node decides, and overrides that agree with it, are fine
    cfg = RuntimeConfig.from_cfg(composed, explicit=["policy.voting.mode=argmax", "innovation/spline_speedup=on"])
    assert cfg.voting.mode == "argmax" and cfg.spline.enabled and cfg.replan.execute_in_n_steps == 20
    agree = {"policy": {"spline": {"enabled": True}}, "innovation": {"spline_speedup": {"enabled": True}}}
    assert RuntimeConfig.from_cfg(agree, explicit=["policy.spline.enabled=true"]).spline.enabled
