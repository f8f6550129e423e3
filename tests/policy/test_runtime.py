"""PolicyRuntime with a deterministic fake ChunkPredictor: replanning, compression, kept actions,
stage voting, corrections, reset and task-change semantics, batching (spec §6.4, §9.1, §10, §11, §13)."""

from __future__ import annotations

import numpy as np
import pytest
from .runtime_fakes import ScriptedPredictor, make_obs, one_hot_logits

from behavior_lab.data import schema
from behavior_lab.policy.observation import ObservationError
from behavior_lab.policy.runtime import PolicyRuntime


def ramp_chunk(req, call, row):
    """a[k, d] = 100*call + k + 0.01 d on every dim; grippers constant at 0.5 (no gate trigger)."""
    k = np.arange(30, dtype=np.float64)[:, None]
    a = 100.0 * call + k + 0.01 * np.arange(23)[None, :]
    a[:, 14] = a[:, 22] = 0.5
    return a


def gripper_step_chunk(req, call, row):
    a = ramp_chunk(req, call, row)
    a[10:, 14] = -1.0  # a gripper closes within the executed part: compression off
    return a


def run(rt, obs, n):
    return np.stack([rt.act([obs])[0] for _ in range(n)])


def test_replans_every_20_steps_and_plays_compressed_actions():
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred)
    out = run(rt, make_obs(), 41)
    assert len(pred.calls) == 3  # steps 0, 20, 40
    t = np.linspace(0, 25, 20)  # a linear ramp is reproduced exactly by the spline
    expected = t[:, None] + 0.01 * np.arange(23)[None, :]
    expected[:, :3] *= 1.3
    expected[:, 14] = expected[:, 22] = 0.5
    np.testing.assert_allclose(out[:20], expected, atol=1e-5)
    np.testing.assert_allclose(out[20], expected[0] + np.r_[[130.0] * 3, [100.0] * 20] * (expected[0] != 0.5), atol=1e-4)
    assert out.dtype == np.float32 and out.shape == (41, 23)
    assert rt.sessions[0].last_compressed is True


def test_kept_actions_are_absolute_chunk_26_to_30_when_compressed():
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred)
    run(rt, make_obs(), 21)
    assert pred.calls[0][0].initial_actions is None  # first chunk: no inpainting (spec §9.4)
    kept = pred.calls[1][0].initial_actions
    np.testing.assert_allclose(kept, ramp_chunk(None, 0, 0)[26:30], atol=1e-5)  # before compression


def test_gripper_gate_executes_1to1_and_keeps_20_to_24():
    pred = ScriptedPredictor(gripper_step_chunk)
    rt = PolicyRuntime(pred)
    out = run(rt, make_obs(), 21)
    chunk0 = gripper_step_chunk(None, 0, 0)
    np.testing.assert_allclose(out[:20], chunk0[:20], atol=1e-5)  # no base scaling either
    np.testing.assert_allclose(pred.calls[1][0].initial_actions, chunk0[20:24], atol=1e-5)
    assert rt.sessions[0].last_compressed is False


def test_spline_off_executes_1to1_and_inpainting_off_keeps_nothing():
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred, cfg={"policy": {"spline": {"enabled": False}, "inpainting": {"enabled": False}}})
    out = run(rt, make_obs(), 21)
    np.testing.assert_allclose(out[:20], ramp_chunk(None, 0, 0)[:20], atol=1e-5)
    assert pred.calls[1][0].initial_actions is None


def test_stage_voting_feeds_the_voted_stage_to_the_next_requests():
    pred = ScriptedPredictor(ramp_chunk, logits_fn=lambda req, call: one_hot_logits(1))
    rt = PolicyRuntime(pred)
    run(rt, make_obs(task=2), 20 * 4 + 1)
    stages = [c[0].stage for c in pred.calls]
    # after replans 0, 1: history [1, 1] (not full); after replan 2: [1,1,1] -> stage 1
    assert stages == [0, 0, 0, 1, 1]


def test_general_correction_replaces_chunk_with_held_state_then_compresses():
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred)
    obs = make_obs(task=1, left_width=0.0005, base_vel=(0.2, 0.0, 0.1))  # left closed: g = -0.99
    out = run(rt, obs, 1)
    state = schema.extract_state_from_proprio(obs[schema.PROPRIO_KEY]).astype(np.float64)
    expected = state.copy()
    expected[14] = 1.0
    expected[:3] *= 1.3  # the held chunk has no gripper variation: compressed, velocity x 1.3
    np.testing.assert_allclose(out[0], expected, atol=1e-6)
    assert rt.sessions[0].last_rule == "general_gripper"
    kept = pred.calls[0][0].initial_actions  # first request: none kept yet
    assert kept is None
    np.testing.assert_allclose(rt.sessions[0].inpainting.kept[0, 14], 1.0)


def test_radio_rule_overwrites_stage_and_clears_votes():
    pred = ScriptedPredictor(ramp_chunk, logits_fn=lambda req, call: one_hot_logits(4))
    rt = PolicyRuntime(pred)
    obs = make_obs(task=0, left_width=0.0005, right_width=0.1)
    rt.act([obs])
    sess = rt.sessions[0]
    sess.voter.set_stage(4)
    sess.index = len(sess.plan)  # force a replan at the next step
    rt.act([obs])
    assert pred.calls[1][0].stage == 4  # predicted with the old stage
    assert sess.last_rule == "radio"
    assert sess.stage == 2  # radio rule: 4 -> 2, then votes [4] (history not full)
    assert list(sess.voter.history) == [4]


def test_reset_clears_plan_votes_kept_actions():
    pred = ScriptedPredictor(ramp_chunk, logits_fn=lambda req, call: one_hot_logits(1))
    rt = PolicyRuntime(pred)
    run(rt, make_obs(), 61)
    sess = rt.sessions[0]
    assert sess.stage == 1 and sess.inpainting.kept is not None
    rt.reset()
    assert sess.plan is None and sess.stage == 0 and sess.inpainting.kept is None and not sess.voter.history
    rt.act([make_obs()])
    assert len(pred.calls) == 5 and pred.calls[-1][0].initial_actions is None and pred.calls[-1][0].stage == 0


def test_task_change_resets_session():
    pred = ScriptedPredictor(ramp_chunk, logits_fn=lambda req, call: one_hot_logits(1))
    rt = PolicyRuntime(pred)
    run(rt, make_obs(task=3), 61)
    assert rt.sessions[0].stage == 1
    rt.act([make_obs(task=4)])  # mid-plan, but the task changed: replan from scratch
    assert len(pred.calls) == 5
    last = pred.calls[-1][0]
    assert (last.task_id, last.stage, last.initial_actions) == (4, 0, None)
    assert last.num_stages == schema.SEED_TASK_NUM_STAGES[4]


def test_batched_envs_share_one_predictor_call_and_reset_one_env():
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred)
    obs = [make_obs(task=t) for t in (1, 2, 3)]
    out = rt.act(obs)
    assert out.shape == (3, 23) and len(pred.calls) == 1 and len(pred.calls[0]) == 3
    for _ in range(5):
        rt.act(obs)
    rt.reset(env_index=1)
    rt.act(obs)
    assert len(pred.calls) == 2 and [r.task_id for r in pred.calls[1]] == [2]  # only env 1 replans
    for _ in range(13):
        rt.act(obs)
    assert len(pred.calls) == 2
    rt.act(obs)  # envs 0 and 2 reach step 20 together
    assert len(pred.calls) == 3 and [r.task_id for r in pred.calls[2]] == [1, 3]


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda o: o.pop(schema.PROPRIO_KEY), "no key"),
        (lambda o: o.__setitem__(schema.PROPRIO_KEY, np.zeros(10)), r"shape \(256,\)"),
        (lambda o: o.__setitem__(schema.HEAD_RGB_KEY, np.zeros((8, 8, 3), np.float32)), "uint8"),
        (lambda o: o.__setitem__(schema.TASK_ID_KEY, np.array([77])), "unknown task id 77"),
        (lambda o: o.__setitem__(schema.TASK_ID_KEY, np.array([1.5])), "one integer"),
    ],
)
def test_malformed_observation_raises_and_leaves_state_alone(mutate, match):
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred)
    rt.act([make_obs()])
    bad = make_obs()
    mutate(bad)
    with pytest.raises(ObservationError, match=match):
        rt.act([bad])
    assert rt.sessions[0].index == 1 and rt.sessions[0].task_id == 1
    rt.act([make_obs()])
    assert rt.sessions[0].index == 2


def test_needs_observation_and_none_entries_for_the_eval_runner():
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred)
    assert rt.needs_observation(0) and rt.needs_observation(1)
    full = rt.act([make_obs(), make_obs(task=2)])
    assert not rt.needs_observation(0) and not rt.needs_observation(1)
    second = rt.act([None, None])  # no observation: the next planned action
    assert len(pred.calls) == 1
    np.testing.assert_allclose(second[0], rt.sessions[0].plan[1], atol=1e-6)
    for _ in range(18):
        rt.act([None, None])
    assert rt.needs_observation(0) and rt.needs_observation(1)
    with pytest.raises(ObservationError, match="needs an observation"):
        rt.act([None, make_obs(task=2)])
    rt.act([make_obs(), make_obs(task=2)])
    assert len(pred.calls) == 2 and full.shape == (2, 23)


def test_env_ids_advance_only_the_listed_envs():
    pred = ScriptedPredictor(ramp_chunk)
    rt = PolicyRuntime(pred)
    rt.act([make_obs(task=t) for t in (1, 2, 3)])
    out = rt.act([None, make_obs(task=3)], env_ids=[0, 2])
    assert out.shape == (2, 23)
    assert [s.index for s in rt.sessions] == [2, 1, 2]
    rt.reset(2)
    rt.act([make_obs(task=3)], env_ids=[2])
    assert [r.task_id for r in pred.calls[-1]] == [3] and rt.sessions[2].index == 1
    with pytest.raises(ValueError, match="distinct"):
        rt.act([None, None], env_ids=[0, 0])


def test_stage_counts_follow_the_training_stage_table():
    class Stats:
        task_num_stages = {1: 7, 2: 9}

    rt = PolicyRuntime(ScriptedPredictor(), Stats())
    assert (rt.num_stages(1), rt.num_stages(2), rt.num_stages(3)) == (7, 9, schema.SEED_TASK_NUM_STAGES[3])
    seed = PolicyRuntime(ScriptedPredictor(), Stats(), {"data": {"source_kwargs": {"stage_table": "seed"}}})
    assert seed.num_stages(1) == schema.SEED_TASK_NUM_STAGES[1]
    custom = PolicyRuntime(ScriptedPredictor(), Stats(), {"data": {"source_kwargs": {"stage_table": {"picking_up_trash": 5}}}})
    assert (custom.num_stages(1), custom.num_stages(2)) == (5, 9)


def test_oracle_stage_mode_reads_the_observation():
    pred = ScriptedPredictor(ramp_chunk, logits_fn=lambda req, call: one_hot_logits(9))
    rt = PolicyRuntime(pred, cfg={"policy": {"voting": {"mode": "oracle"}}})
    obs = make_obs(task=2)
    obs["stage"] = np.array([3])
    rt.act([obs])
    assert pred.calls[0][0].stage == 3 and rt.sessions[0].stage == 3  # logits ignored


def test_an_episode_seed_gives_every_chunk_its_own_noise_seed():
    """reset(i, seed=s): the r-th chunk of env i asks for flow noise seeded from (s, r), whatever
    other envs replan with it; no seed = the global RNG (noise_seed None)."""
    from behavior_lab.policy.runtime import chunk_noise_seed

    pred = ScriptedPredictor()
    rt = PolicyRuntime(pred, cfg={"policy": {"spline": {"enabled": False}, "replan": {"execute_in_n_steps": 2}}})
    rt.reset(0, seed=7)
    rt.reset(1, seed=7)
    rt.reset(2)
    obs = make_obs()
    for _ in range(4):  # two replans per env
        rt.act([obs if rt.needs_observation(i) else None for i in range(3)], env_ids=[0, 1, 2])
    seeds = [[r.noise_seed for r in call] for call in pred.calls]
    assert seeds == [[chunk_noise_seed(7, 0)] * 2 + [None], [chunk_noise_seed(7, 1)] * 2 + [None]]
    assert chunk_noise_seed(7, 0) != chunk_noise_seed(7, 1) != chunk_noise_seed(8, 1)
    rt.reset(0)  # a new episode without a seed goes back to the global RNG
    rt.act([obs], env_ids=[0])
    assert pred.calls[-1][0].noise_seed is None


def wavering_gripper_chunk(req, call, row):
    """Right gripper: open, a dip to -0.3, a close to -0.9, wavering around 0, a rise to 0.7."""
    a = ramp_chunk(req, call, row)
    a[:, 22] = [1.0, 0.2, -0.3, 0.1, -0.9, -0.2, 0.3, -0.1, 0.4, 0.7] * 3
    a[:, 14] = 0.3  # left never passes the threshold: stays at the episode-start +1
    return a


def test_gripper_latch_sends_plus_minus_one_with_hysteresis_and_keeps_the_raw_chunk():
    cfg = {"policy": {"gripper_latch": {"enabled": True, "threshold": 0.5},
                      "spline": {"enabled": False}}}
    pred = ScriptedPredictor(wavering_gripper_chunk)
    out = run(PolicyRuntime(pred, cfg=cfg), make_obs(), 21)
    want = [1, 1, 1, 1, -1, -1, -1, -1, -1, 1]
    np.testing.assert_array_equal(out[:10, 22], want)
    np.testing.assert_array_equal(out[:20, 14], 1.0)
    raw = wavering_gripper_chunk(None, 0, 0)
    np.testing.assert_allclose(out[:10, :14], raw[:10, :14], atol=1e-5)  # other dims untouched
    np.testing.assert_allclose(pred.calls[1][0].initial_actions[:, 22], raw[20:24, 22])  # inpainting: raw
    plain = run(PolicyRuntime(ScriptedPredictor(wavering_gripper_chunk),
                              cfg={"policy": {"spline": {"enabled": False}}}), make_obs(), 10)
    np.testing.assert_allclose(plain[:, 22], raw[:10, 22], atol=1e-6)  # off by default


def test_gripper_latch_restarts_open_with_each_episode():
    def closed(req, call, row):
        a = ramp_chunk(req, call, row)
        a[:, 22] = -0.9 if call == 0 else 0.0
        return a

    rt = PolicyRuntime(ScriptedPredictor(closed), cfg={"policy": {"gripper_latch": {"enabled": True}}})
    assert run(rt, make_obs(), 20)[-1, 22] == -1.0
    rt.reset(0)
    assert run(rt, make_obs(), 5)[0, 22] == 1.0  # 0.0 is inside the band: the reset latch (open) holds


def test_gripper_latch_threshold_is_checked():
    with pytest.raises(ValueError, match="gripper_latch.threshold"):
        PolicyRuntime(ScriptedPredictor(ramp_chunk), cfg={"policy": {"gripper_latch": {"threshold": 1.5}}})
