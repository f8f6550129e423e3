"""Scripted experts: success, annotation schema, recorded actions == actions sent."""

from __future__ import annotations

import numpy as np
import pytest

from behavior_lab.data import schema
from behavior_lab.sim import TASKS, make_env
from behavior_lab.sim.experts import Perturbation, make_expert
from behavior_lab.sim.recorder import expert_rng

SKILL_KEYS = {"skill_idx", "skill_description", "object_id", "frame_duration", "skill_type"}


@pytest.mark.parametrize("task", ["turning_on_radio", "picking_up_trash"])
def test_expert_succeeds_and_annotates(task):
    env = make_env(task)
    result = make_expert(env, expert_rng(0, task, 0)).run(0, render=False)
    assert result.success and result.info["q_score"] == 1.0
    assert result.actions.shape == (result.steps, schema.ACTION_DIM) and result.actions.dtype == np.float32
    ann = result.annotations
    assert ann["task_name"] == task
    skills = ann["skill_annotation"]
    assert skills and all(set(s) == SKILL_KEYS for s in skills)
    assert [s["skill_idx"] for s in skills] == list(range(len(skills)))
    assert skills[0]["skill_description"] == "move to" and skills[0]["skill_type"] == "navigation"
    assert all(s["skill_type"] == "manipulation" for s in skills[1:])
    ends = [s["frame_duration"] for s in skills]
    assert ends[0][0] == 0 and ends[-1][1] == result.steps
    assert all(a[1] == b[0] and a[0] <= a[1] for a, b in zip(ends, ends[1:]))


def test_recorded_actions_replay_to_the_same_outcome():
    env = make_env("turning_on_radio")
    result = make_expert(env, 7).run(3, render=False)
    env.reset(3, render=False)
    for a in result.actions:
        _, done, info = env.step(a, render=False)
    assert done and info["success"] and info["steps"] == result.steps


def test_expert_style_varies_between_episodes():
    env = make_env("turning_on_radio")
    a = make_expert(env, 1).run(2, render=False)
    b = make_expert(env, 2).run(2, render=False)
    assert a.success and b.success
    assert a.steps != b.steps or not np.allclose(a.actions, b.actions)


@pytest.mark.sim
def test_rendered_demo_frames_align_with_actions():
    env = make_env("turning_on_radio", image_size=32)
    r = make_expert(env, 0).run(1, render=True)
    n = len(r.frames[schema.DATASET_ACTION_KEY])
    assert r.success and n == r.steps
    for key in schema.DATASET_RGB_KEYS:
        assert r.frames[key].shape == (n, 32, 32, 3)
    assert r.frames[schema.DATASET_STATE_KEY].shape == (n, schema.PROPRIO_DIM)
    assert r.frames[schema.DATASET_CAM_REL_POSES_KEY].shape == (n, schema.CAM_REL_POSES_DIM)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_expert_success_rate_at_least_95_percent(task):
    env = make_env(task)
    instances = env.instances("train", 20)
    ok = sum(make_expert(env, expert_rng(0, task, i)).run(i, render=False).success for i in instances)
    assert ok >= 19, f"{task}: expert succeeded on {ok}/20"


@pytest.mark.parametrize("task", ["turning_on_radio", "make_microwave_popcorn"])
def test_button_press_is_not_read_as_a_failed_grasp_by_the_gripper_corrections(task):
    """Regression: the press experts closed the right gripper fully (-1, state -1.04), which the
    seed's correction rules (spec §11: g < -0.98 = closed on nothing) undo at every replan on
    task 0 (general rule before stage 2, radio rule from stage 2) — with `gripper_corrections=on`
    even a perfect policy could not press the radio's button."""
    from behavior_lab.policy.config import CorrectionsConfig
    from behavior_lab.policy.corrections import GripperCorrector

    env = make_env(task, image_size=16)
    result = make_expert(env, expert_rng(0, task, 0)).run(0, render=True)
    assert result.success
    states = schema.extract_state_from_proprio(np.asarray(result.frames[schema.DATASET_STATE_KEY]))
    skills = result.annotations["skill_annotation"]
    press = [s for s in skills if s["skill_description"] == "press"]
    assert press
    cfg = CorrectionsConfig()
    corrector = GripperCorrector(cfg)
    tid = schema.task_id(task)
    for s in press:
        lo, hi = s["frame_duration"]
        seg = states[lo:hi]
        assert seg[:, schema.RIGHT_GRIPPER_DIM].min() > cfg.closed_threshold + 0.05  # margin
        for st in seg:
            for stage in range(schema.SEED_TASK_NUM_STAGES[tid]):
                chunk = np.tile(st.astype(np.float64), (30, 1))
                fixed = corrector.apply(tid, stage, st, chunk)
                assert fixed.rule is None or fixed.actions[0, schema.RIGHT_GRIPPER_DIM] == st[schema.RIGHT_GRIPPER_DIM]


def _spy_on_steps(env) -> list:
    sent, step = [], env.step

    def spy(action, render=True):
        sent.append(np.array(action, copy=True))
        return step(action, render=render)

    env.step = spy
    return sent


def test_perturbed_rollout_executes_offsets_but_records_the_experts_actions():
    """DART: the env gets the expert's action plus an arm/base offset; the label is the expert's own
    action. Grippers and torso are never perturbed, and the arm offset has faded a few steps after a
    gripper command changes (grasps happen where the expert meant them)."""
    task = "picking_up_trash"
    env = make_env(task)
    sent = _spy_on_steps(env)
    r = make_expert(env, expert_rng(0, task, 0)).run(0, render=False, perturb=Perturbation(arm=0.04, base=0.03))
    assert r.success
    sent = np.stack(sent)
    assert sent.shape == r.actions.shape
    offset = sent - r.actions
    arms = np.r_[np.arange(23)[schema.ACTION_SLICES["left_arm"]], np.arange(23)[schema.ACTION_SLICES["right_arm"]]]
    base = np.arange(23)[schema.ACTION_SLICES["base"]]
    rest = np.setdiff1d(np.arange(23), np.r_[arms, base])
    assert 0.015 < offset[:, arms].std() < 0.06  # about the configured 0.04 rad
    assert 0.01 < offset[:, base].std() < 0.05
    np.testing.assert_array_equal(offset[:, rest], 0.0)
    g = r.actions[:, schema.RIGHT_GRIPPER_DIM]
    switches = np.flatnonzero(np.diff(g) != 0) + 1
    assert len(switches) == 6  # three grasps, three releases
    inside = switches[switches + 6 <= len(offset)]  # the last release may end the episode
    assert len(inside) >= 5
    for t in inside:
        assert np.abs(offset[t + 3:t + 6][:, arms]).max() < 0.01, t


def test_perturbation_is_deterministic_and_off_by_default():
    task = "turning_on_radio"
    env = make_env(task)
    plain = make_expert(env, expert_rng(0, task, 1)).run(1, render=False)
    off = make_expert(env, expert_rng(0, task, 1)).run(1, render=False, perturb=Perturbation())
    np.testing.assert_array_equal(plain.actions, off.actions)
    runs = []
    for _ in range(2):
        env = make_env(task)
        log = _spy_on_steps(env)
        res = make_expert(env, expert_rng(0, task, 1)).run(1, render=False, perturb=Perturbation(arm=0.03, base=0.02))
        assert res.success
        runs.append(np.stack(log))
    np.testing.assert_array_equal(runs[0], runs[1])
    n = min(len(runs[0]), len(plain.actions))
    assert not np.array_equal(runs[0][:n], plain.actions[:n])


@pytest.mark.parametrize("kwargs, key", [({"arm": -0.1}, "perturb.arm"), ({"base": float("nan")}, "perturb.base"),
                                         ({"tau": 0.5}, "perturb.tau")])
def test_bad_perturbation_names_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        Perturbation(**kwargs)
