"""Environment contract: every task builds, resets, steps; BEHAVIOR keys/shapes; determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from behavior_lab.data import schema
from behavior_lab.sim import TASKS, make_env
from behavior_lab.sim.env import MiniBehaviorEnv, split_of


@pytest.fixture(scope="module", params=TASKS)
def env(request):
    e = make_env(request.param)
    yield e
    e.close()


def test_every_task_resets_and_steps_without_nan(env):
    obs = env.reset(env.instances("train", 1)[0], render=False)
    assert obs[schema.PROPRIO_KEY].shape == (schema.PROPRIO_DIM,)
    assert obs[schema.PROPRIO_KEY].dtype == np.float32
    assert obs[schema.CAM_REL_POSES_KEY].shape == (schema.CAM_REL_POSES_DIM,)
    assert obs[schema.TASK_ID_KEY].dtype == np.int64 and obs[schema.TASK_ID_KEY].shape == (1,)
    assert obs[schema.TASK_ID_KEY][0] == env.task.task_id == schema.task_id(env.task.name)
    a = env.home_action()
    a[0:3] = [0.2, -0.1, 0.3]
    for _ in range(10):
        out, done, info = env.step(a, render=False)
        assert out is None and not done
    assert np.all(np.isfinite(env.data.qpos)) and np.all(np.isfinite(env.proprio()))
    assert set(info) >= {"success", "q_score", "predicates", "steps", "agent_distance"}
    assert info["steps"] == 10 and set(info["agent_distance"]) == {"base", "left", "right"}
    assert info["agent_distance"]["base"] > 0.02
    assert not info["success"] and info["q_score"] == 0.0


def test_same_instance_and_actions_give_identical_states():
    env = make_env("picking_up_trash")
    rng = np.random.default_rng(3)
    actions = [env.home_action() + np.r_[rng.normal(0, 0.2, 3), rng.normal(0, 0.05, 20)] for _ in range(15)]
    states = []
    for _ in range(2):
        env.reset(5, render=False)
        for a in actions:
            env.step(a, render=False)
        states.append(env.get_state())
    np.testing.assert_array_equal(states[0], states[1])
    env.reset(6, render=False)
    assert not np.array_equal(env.get_state(), states[0])


def test_state_from_proprio_tracks_the_commanded_joints():
    env = make_env("turning_on_radio")
    env.reset(0, render=False)
    a = env.home_action()
    a[schema.ACTION_SLICES["right_arm"]] += 0.2
    a[schema.ACTION_SLICES["torso"]] = [0.1, -0.1, 0.05, 0.2]
    a[schema.RIGHT_GRIPPER_DIM] = 0.0
    a[schema.LEFT_GRIPPER_DIM] = -1.0
    a[0:3] = [0.3, 0.0, 0.0]
    for _ in range(40):
        env.step(a, render=False)
    state = schema.extract_state_from_proprio(env.proprio())
    np.testing.assert_allclose(state[3:22], a[3:22], atol=0.03)  # torso, arms, left gripper
    assert abs(state[22] - a[22]) < 0.05  # right gripper width in [-1, 1] units
    np.testing.assert_allclose(state[0:3], a[0:3], atol=0.02)  # base velocity, robot frame


def test_base_velocity_is_robot_frame():
    env = make_env("turning_on_radio")
    env.reset(0, render=False)
    yaw0 = env.proprio()[schema.PROPRIO_INDICES["robot_2d_ori"]][0]
    a = env.home_action()
    a[0:3] = [0.0, 0.3, 0.0]  # strafe left
    start = env.proprio()[schema.PROPRIO_INDICES["robot_pos"]].copy()
    for _ in range(30):
        env.step(a, render=False)
    moved = env.proprio()[schema.PROPRIO_INDICES["robot_pos"]] - start
    left = np.array([-np.sin(yaw0), np.cos(yaw0), 0.0])
    assert moved @ left > 0.25 and abs(moved @ np.array([np.cos(yaw0), np.sin(yaw0), 0.0])) < 0.02


def test_instances_are_disjoint_and_layouts_differ():
    train, public, held = (MiniBehaviorEnv.instances(s, 50) for s in ("train", "public", "heldout"))
    assert not (set(train) & set(public)) and not (set(public) & set(held)) and not (set(train) & set(held))
    assert split_of(public[3]) == "public" and split_of(held[0]) == "heldout"
    env = make_env("turning_on_radio")
    a, b = env.sample_layout(train[0]), env.sample_layout(public[0])
    assert a.static["radio"] != b.static["radio"]
    assert env.sample_layout(train[0]).static == a.static  # deterministic per instance
    with pytest.raises(KeyError, match="train"):
        MiniBehaviorEnv.instances("test", 3)


def test_unknown_task_lists_valid_names_and_suggests():
    with pytest.raises(KeyError, match="turning_on_radio") as e:
        make_env("turning_on_radoi")
    assert "Did you mean" in str(e.value) and "picking_up_trash" in str(e.value)


def test_bad_action_shape_is_rejected():
    env = make_env("turning_on_radio")
    env.reset(0, render=False)
    with pytest.raises(ValueError, match="23"):
        env.step(np.zeros(22), render=False)


def test_timeout_is_twice_the_mean_demo_length():
    for name in TASKS:
        env = make_env(name)
        assert env.max_steps == 2 * env.task.mean_demo_length


@pytest.mark.sim
def test_rendered_observation_has_behavior_keys_and_images():
    env = make_env("turning_on_radio", image_size=48)
    obs = env.reset(1)
    for key in schema.OBS_RGB_KEYS:
        img = obs[key]
        assert img.shape == (48, 48, 3) and img.dtype == np.uint8
        assert img.std() > 5  # not a blank frame
    assert not np.array_equal(obs[schema.HEAD_RGB_KEY], obs[schema.RIGHT_WRIST_RGB_KEY])
    obs2, _, _ = env.step(env.home_action())
    assert set(obs2) == set(obs)
    env.close()


def test_image_size_is_bounded():
    with pytest.raises(ValueError, match="224"):
        make_env("turning_on_radio", image_size=300)


def test_sim_benchmarks_are_registered():
    from behavior_lab import benchmarks

    names = set(benchmarks.discover())
    assert {"sim.physics_steps", "sim.render_steps", "sim.demo_seconds", "sim.expert_success"} <= names


def test_task_info_is_the_task_points_in_the_robot_base_frame():
    """Privileged observation (DESIGN §8 lever 5): point i of task_info, rotated by the base yaw and
    added to the base position, is the world position of the task's info point i; padding is zero;
    the last two slots are the hands' grasp points."""
    env = make_env("turning_on_radio")
    obs = env.reset(3, render=False)
    info = obs[schema.TASK_INFO_KEY]
    assert info.shape == (schema.TASK_INFO_DIM,) and info.dtype == np.float32

    def world(info_vec):
        x, y, yaw = (env.data.qpos[a] for a in env.base_qadr)
        c, s = np.cos(yaw), np.sin(yaw)
        p = info_vec.reshape(schema.TASK_INFO_POINTS, 3)
        return np.stack([x + c * p[:, 0] - s * p[:, 1], y + s * p[:, 0] + c * p[:, 1], p[:, 2]], 1)

    np.testing.assert_allclose(world(info)[0], env.site_pos("radio_button_site"), atol=1e-5)
    np.testing.assert_allclose(world(info)[1], env.body_pos("radio"), atol=1e-5)
    assert not info.reshape(-1, 3)[len(env.task.info_points):schema.TASK_INFO_TASK_POINTS].any()
    for side, slot in schema.TASK_INFO_HAND_SLOTS.items():
        np.testing.assert_allclose(world(info)[slot], env.site_pos(f"{side}_grasp_site"), atol=1e-5)
    a = env.home_action()
    a[0:3] = [0.2, 0.1, 0.3]  # drive and turn: the base-frame coordinates change, the world point not
    for _ in range(20):
        env.step(a, render=False)
    moved = env.observe(render=False)[schema.TASK_INFO_KEY]
    assert np.abs(moved - info).max() > 0.05
    np.testing.assert_allclose(world(moved)[0], env.site_pos("radio_button_site"), atol=1e-5)
    a = env.home_action()
    a[schema.ACTION_SLICES["right_arm"]][1] += 0.4  # move one arm: only its hand slot changes
    for _ in range(15):
        env.step(a, render=False)
    arm = env.observe(render=False)[schema.TASK_INFO_KEY].reshape(-1, 3)
    right = schema.TASK_INFO_HAND_SLOTS["right"]
    assert np.linalg.norm(arm[right] - moved.reshape(-1, 3)[right]) > 0.02
    np.testing.assert_allclose(world(arm.reshape(-1))[right], env.site_pos("right_grasp_site"), atol=1e-5)
    np.testing.assert_allclose(world(arm.reshape(-1))[0], env.site_pos("radio_button_site"), atol=1e-5)


def test_every_task_names_resolvable_info_points():
    for name in TASKS:
        env = make_env(name)
        assert 1 <= len(env.task.info_points) <= schema.TASK_INFO_TASK_POINTS
        info = env.reset(0, render=False)[schema.TASK_INFO_KEY].reshape(-1, 3)
        assert np.all(np.linalg.norm(info[: len(env.task.info_points), :2], axis=1) < 4.0)  # in the room
        env.close()


def test_another_mujoco_release_is_warned_about_once(monkeypatch):
    """The suite is validated with one MuJoCo release (constraints.txt); contact results differ
    between releases, so make_env warns (once) when another one is installed."""
    import mujoco

    from behavior_lab.sim import MUJOCO_VERSION
    from behavior_lab.sim.registry import check_mujoco_version

    check_mujoco_version.cache_clear()
    monkeypatch.setattr(mujoco, "__version__", MUJOCO_VERSION)
    assert check_mujoco_version() is None
    check_mujoco_version.cache_clear()
    monkeypatch.setattr(mujoco, "__version__", "0.0.1")
    with pytest.warns(RuntimeWarning, match=f"MuJoCo 0.0.1 is installed; .*validated with {MUJOCO_VERSION}"):
        make_env("turning_on_radio").close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_env("turning_on_radio").close()  # once per process
    check_mujoco_version.cache_clear()


def test_trash_cans_are_named_by_rank_from_the_right():
    """picking_up_trash: can_1 (red) is always the rightmost can and can_3 the leftmost, the order the
    expert picks them in, so which can comes next is the same colour and task_info slot every time;
    the cans stay >= 11 cm apart (room for the open fingers) and on the table."""
    env = make_env("picking_up_trash")
    for instance in (0, 1, 2, 3, 4, 1_000_000, 1_000_007, 2_000_003):
        env.reset(instance, render=False)
        pos = [env.body_pos(c) for c in ("can_1", "can_2", "can_3")]
        ys = [p[1] for p in pos]
        assert ys == sorted(ys), (instance, ys)
        for i in range(3):
            for j in range(i):
                assert np.linalg.norm(pos[i][:2] - pos[j][:2]) >= 0.11 - 1e-6, (instance, i, j)
            assert pos[i][2] > 0.72, (instance, i)  # standing on the table top
    env.close()
