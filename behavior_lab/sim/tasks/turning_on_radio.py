"""turning_on_radio (BEHAVIOR id 0): go to the radio on the table and press its button.

BDDL goal: ``(toggled_on ?radio_receiver.n.01_1)`` (sim-measurements.md §3, bddl 3.6.0).
Randomised: table pose, radio pose and yaw on the table, robot start pose.
"""

from __future__ import annotations

import numpy as np

from behavior_lab.data import schema
from behavior_lab.sim import scene
from behavior_lab.sim.experts import PRESS_GRIPPER, Expert, down_grasp
from behavior_lab.sim.predicates import P
from behavior_lab.sim.tasks.base import Layout, Pose2D, TaskDef, ToggleSpec, uniform

TABLE_HALF = (0.30, 0.45)
TABLE_H = 0.72
STANCE_BACK = 0.42  # base-frame x of the button when the robot stands at the radio


def pieces() -> list[scene.Piece]:
    return [scene.table("table", half=TABLE_HALF, height=TABLE_H), scene.radio("radio")]


def sample_layout(rng: np.random.Generator) -> Layout:
    tx, ty = 1.25 + uniform(rng, -0.08, 0.08), uniform(rng, -0.1, 0.1)
    rx = tx - TABLE_HALF[0] + uniform(rng, 0.12, 0.2)
    ry = ty + uniform(rng, -0.28, 0.28)
    ryaw = uniform(rng, -0.4, 0.4)
    robot = Pose2D(uniform(rng, -0.6, -0.3), uniform(rng, -0.25, 0.25), uniform(rng, -0.35, 0.35))
    return Layout(robot=robot, static={"table": (tx, ty, 0.0, 0.0), "radio": (rx, ry, TABLE_H, ryaw)})


def expert_plan(ex: Expert):
    button = ex.site("radio_button_site")
    table_front = ex.body("table")[0] - TABLE_HALF[0]
    # stand so the button is ~0.42 m ahead of the base and in front of the right shoulder,
    # never closer than 3 cm to the table edge
    sx = min(button[0] - STANCE_BACK + ex.rng.uniform(-0.03, 0.03), table_front - 0.29)
    sy = button[1] + 0.2 + ex.rng.uniform(-0.04, 0.04)
    with ex.skill("move to", "radio"):
        yield from ex.drive_to(sx, sy, ex.rng.uniform(-0.05, 0.05))
    with ex.skill("press", "radio"):
        yaw = ex.base_pose()[2]
        R = down_grasp(yaw)
        ex.cmd[schema.RIGHT_GRIPPER_DIM] = PRESS_GRIPPER  # not "closed" for spec §11
        above = button + np.array([ex.rng.uniform(-0.01, 0.01), ex.rng.uniform(-0.01, 0.01), 0.09])
        yield from ex.move_hand("right", above, R)
        press = button + np.array([0.0, 0.0, -0.004])
        yield from ex.move_hand("right", press, R, speed=0.2, settle_max=12, precise=True)
        yield from ex.wait(3)
        yield from ex.move_hand("right", above, R, speed=0.3, settle_max=0)


TASK = TaskDef(
    name="turning_on_radio",
    task_id=schema.task_id("turning_on_radio"),
    description="turn on the radio",
    mean_demo_length=116,  # measured: 100 train instances, expert seed 0
    pieces=pieces,
    sample_layout=sample_layout,
    goal_options=((P("toggled_on", "radio"),),),
    expert_plan=expert_plan,
    toggles={"radio": ToggleSpec("radio_button_joint", sign=-1.0, threshold=0.008)},
    info_points=("radio_button_site", "radio", "table"),
)
