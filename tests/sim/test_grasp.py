"""Assisted grasping: close near an object -> weld; lift; open -> release (OmniGibson-style)."""

from __future__ import annotations

import numpy as np

from behavior_lab.data import schema
from behavior_lab.sim import make_env
from behavior_lab.sim.experts import down_grasp, make_expert


def _hold(ex, env, steps):
    for _ in range(steps):
        env.step(ex.cmd.copy(), render=False)


def _drive(gen, env, ex):
    for _ in gen:
        env.step(ex.cmd.copy(), render=False)


def test_weld_engages_lifts_and_releases():
    env = make_env("picking_up_trash")
    env.reset(0, render=False)
    ex = make_expert(env, 0)
    ex.reset()
    front = env.body_pos("table")[0] - 0.30
    _drive(ex.drive_to(front - 0.28, env.body_pos("can_1")[1] + 0.21, 0.0), env, ex)
    can0 = env.body_pos("can_1").copy()
    R = down_grasp(ex.base_pose()[2])
    _drive(ex.move_hand("right", can0 + [0, 0, 0.15], R), env, ex)
    _drive(ex.move_hand("right", can0 + [0, 0, 0.028], R), env, ex)
    assert not env.is_grasped("can_1")
    ex.cmd[schema.RIGHT_GRIPPER_DIM] = -1.0
    _hold(ex, env, 5)
    assert env.grasp.held["right"] == "can_1"
    _drive(ex.move_hand("right", can0 + [0, 0, 0.25], R), env, ex)
    assert env.body_pos("can_1")[2] > can0[2] + 0.15
    width = env.proprio()[schema.PROPRIO_INDICES["gripper_right_qpos"]].sum()
    assert 0.03 < width < 0.07  # fingers stopped on the can (diameter 5.6 cm)
    ex.cmd[schema.RIGHT_GRIPPER_DIM] = 1.0
    _hold(ex, env, 30)
    assert not env.is_grasped("can_1") and env.body_pos("can_1")[2] < can0[2] + 0.02


def test_closing_far_from_objects_grasps_nothing():
    env = make_env("picking_up_trash")
    env.reset(0, render=False)
    a = env.home_action()
    a[schema.RIGHT_GRIPPER_DIM] = a[schema.LEFT_GRIPPER_DIM] = -1.0
    for _ in range(10):
        env.step(a, render=False)
    assert env.grasp.held == {"left": None, "right": None}
    width = env.proprio()[schema.PROPRIO_INDICES["gripper_right_qpos"]].sum()
    assert width < 0.005 and np.isclose(schema.extract_state_from_proprio(env.proprio())[22], -1, atol=0.1)
