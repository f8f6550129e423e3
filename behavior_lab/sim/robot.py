"""An R1Pro-shaped mobile bimanual robot made of MuJoCo primitives (MJCF fragment + name tables).

Layout follows Galaxea R1Pro as BEHAVIOR exposes it (facts §2.3/§2.4): a holonomic base (virtual
slide x, slide y, hinge yaw joints), a 4-joint torso, two 7-DoF arms and two parallel-jaw grippers
whose finger widths sum to 0..0.1 m. Cameras: head (``zed_link``) and one per wrist
(``*_realsense_link``), named as in the BEHAVIOR observation keys.

The base is held by position servos whose targets integrate the commanded robot-frame velocity
(sim-measurements.md §1: pure velocity actuators drift 2-3 cm under arm reaction forces). Robot
bodies use gravity compensation; arms/torso use position actuators (kp 300, kv 20); link5<->link7
style self-contacts cannot occur because robot geoms do not collide with each other (contype 2,
conaffinity 0) nor with the floor, only with objects and furniture.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

# Names -----------------------------------------------------------------------------------------
BASE_JOINTS = ("base_x", "base_y", "base_yaw")
TORSO_JOINTS = tuple(f"torso_joint{i}" for i in range(1, 5))
ARM_JOINTS = {s: tuple(f"{s}_arm_joint{i}" for i in range(1, 8)) for s in ("left", "right")}
FINGER_JOINTS = {s: (f"{s}_gripper_finger_joint1", f"{s}_gripper_finger_joint2") for s in ("left", "right")}
PALM_BODY = {"left": "left_palm", "right": "right_palm"}
GRASP_SITE = {"left": "left_grasp_site", "right": "right_grasp_site"}
EEF_SITE = GRASP_SITE  # the end-effector pose reported in proprio is the grasp point between the fingers
BASE_BODY = "base_link"
HEAD_CAMERA = "robot_r1:zed_link:Camera:0"
WRIST_CAMERA = {"left": "robot_r1:left_realsense_link:Camera:0", "right": "robot_r1:right_realsense_link:Camera:0"}
CAMERA_ORDER = (HEAD_CAMERA, WRIST_CAMERA["left"], WRIST_CAMERA["right"])  # schema.OBS_RGB_KEYS order

FINGER_MAX = 0.05  # per finger; width = sum of the two fingers in [0, 0.1] m (schema.GRIPPER_MAX_WIDTH)

# Base velocity limits of the R1Pro holonomic controller (facts §2.3: [-0.75,-0.75,-1]..[0.75,0.75,1]).
BASE_VEL_LIMIT = np.array([0.75, 0.75, 1.0])

# Joint ranges (rad). Arm chain: shoulder pitch (y), shoulder roll (x), upper-arm yaw (z),
# elbow (y), forearm yaw (z), wrist pitch (y), wrist roll (z); links hang along -z at q = 0.
TORSO_RANGE = ((-0.6, 0.6), (-0.9, 0.9), (-0.6, 0.6), (-1.5, 1.5))
ARM_RANGE = ((-3.0, 1.2), (-1.6, 1.6), (-2.8, 2.8), (-2.8, 0.1), (-2.8, 2.8), (-2.9, 2.9), (-2.8, 2.8))

# A comfortable "hands forward, grippers down" pose used as home and as the IK null-space target.
ARM_HOME = {
    "left": np.array([-0.3, 0.1, 0.0, -2.3, 0.0, 2.6, 0.0]),
    "right": np.array([-0.3, -0.1, 0.0, -2.3, 0.0, 2.6, 0.0]),
}
TORSO_HOME = np.zeros(4)

# Geometry (m).
BASE_TOP = 0.30
TORSO_LINKS = (0.35, 0.30, 0.15)
SHOULDER_Y = 0.21
UPPER_ARM, FOREARM, WRIST, PALM = 0.30, 0.28, 0.07, 0.05
WRIST_CAM_TILT = math.radians(22.0)
FINGER_LEN = 0.055
HEAD_PITCH = math.radians(38.0)

ROBOT_RGBA = {"base": "0.25 0.27 0.30 1", "torso": "0.82 0.83 0.85 1", "arm": "0.78 0.80 0.83 1",
              "joint": "0.30 0.32 0.36 1", "finger": "0.15 0.15 0.17 1", "palm": "0.35 0.37 0.42 1"}


@dataclass(frozen=True)
class RobotLayout:
    """Joint names in the order of the 23-D action (base first) and of BEHAVIOR's 28-D joint_qpos."""

    base: tuple[str, ...] = BASE_JOINTS
    torso: tuple[str, ...] = TORSO_JOINTS
    left_arm: tuple[str, ...] = ARM_JOINTS["left"]
    right_arm: tuple[str, ...] = ARM_JOINTS["right"]
    left_fingers: tuple[str, ...] = FINGER_JOINTS["left"]
    right_fingers: tuple[str, ...] = FINGER_JOINTS["right"]

    def joint_qpos_order(self) -> list[str | None]:
        """BEHAVIOR's 28 joints: 6 virtual base joints (x, y, z, rx, ry, rz), torso 4, arms
        interleaved L/R, left fingers, right fingers (facts §2.4 PROPRIO_QPOS_INDICES).
        ``None`` marks the virtual z/rx/ry joints that this planar base does not have."""
        order: list[str | None] = ["base_x", "base_y", None, None, None, "base_yaw"]
        order += list(self.torso)
        for left, right in zip(self.left_arm, self.right_arm):
            order += [left, right]
        order += list(self.left_fingers) + list(self.right_fingers)
        assert len(order) == 28
        return order


def _arm_xml(side: str) -> str:
    sy = 1.0 if side == "left" else -1.0
    r = ARM_RANGE
    a = ROBOT_RGBA
    j = ARM_JOINTS[side]
    cam = WRIST_CAMERA[side]
    f1, f2 = FINGER_JOINTS[side]
    return f"""
      <body name="{side}_arm_link1" pos="0 {sy * SHOULDER_Y:.3f} 0">
        <joint name="{j[0]}" axis="0 1 0" range="{r[0][0]} {r[0][1]}"/>
        <geom type="sphere" size="0.05" rgba="{a['joint']}"/>
        <body name="{side}_arm_link2">
          <joint name="{j[1]}" axis="1 0 0" range="{r[1][0]} {r[1][1]}"/>
          <inertial pos="0 0 0" mass="0.3" diaginertia="0.001 0.001 0.001"/>
          <body name="{side}_arm_link3">
            <joint name="{j[2]}" axis="0 0 1" range="{r[2][0]} {r[2][1]}"/>
            <geom type="capsule" fromto="0 0 -0.03 0 0 {-UPPER_ARM + 0.02:.3f}" size="0.04" rgba="{a['arm']}"/>
            <body name="{side}_arm_link4" pos="0 0 {-UPPER_ARM:.3f}">
              <joint name="{j[3]}" axis="0 1 0" range="{r[3][0]} {r[3][1]}"/>
              <geom type="sphere" size="0.042" rgba="{a['joint']}"/>
              <body name="{side}_arm_link5">
                <joint name="{j[4]}" axis="0 0 1" range="{r[4][0]} {r[4][1]}"/>
                <geom type="capsule" fromto="0 0 -0.03 0 0 {-FOREARM + 0.02:.3f}" size="0.035" rgba="{a['arm']}"/>
                <body name="{side}_arm_link6" pos="0 0 {-FOREARM:.3f}">
                  <joint name="{j[5]}" axis="0 1 0" range="{r[5][0]} {r[5][1]}"/>
                  <geom type="sphere" size="0.035" rgba="{a['joint']}"/>
                  <body name="{side}_arm_link7">
                    <joint name="{j[6]}" axis="0 0 1" range="{r[6][0]} {r[6][1]}"/>
                    <geom type="cylinder" fromto="0 0 -0.01 0 0 {-WRIST:.3f}" size="0.03" rgba="{a['arm']}"/>
                    <body name="{PALM_BODY[side]}" pos="0 0 {-WRIST:.3f}">
                      <geom type="box" pos="0 0 {-PALM / 2:.3f}" size="0.03 0.065 {PALM / 2:.3f}" rgba="{a['palm']}" mass="0.3"/>
                      <camera name="{cam}" pos="-0.045 0 {-PALM - 0.008:.3f}" xyaxes="0 -1 0 {math.cos(WRIST_CAM_TILT):.4f} 0 {math.sin(WRIST_CAM_TILT):.4f}" fovy="70"/>
                      <site name="{GRASP_SITE[side]}" pos="0 0 {-PALM - FINGER_LEN + 0.015:.3f}" size="0.008" rgba="1 0 0 0"/>
                      <body name="{side}_finger1" pos="0 0 {-PALM:.3f}">
                        <joint name="{f1}" type="slide" axis="0 1 0" range="0 {FINGER_MAX}"/>
                        <geom type="box" pos="0 0.008 {-FINGER_LEN / 2:.4f}" size="0.018 0.008 {FINGER_LEN / 2:.4f}" rgba="{a['finger']}" friction="1.5 0.02 0.001" mass="0.05"/>
                      </body>
                      <body name="{side}_finger2" pos="0 0 {-PALM:.3f}">
                        <joint name="{f2}" type="slide" axis="0 -1 0" range="0 {FINGER_MAX}"/>
                        <geom type="box" pos="0 -0.008 {-FINGER_LEN / 2:.4f}" size="0.018 0.008 {FINGER_LEN / 2:.4f}" rgba="{a['finger']}" friction="1.5 0.02 0.001" mass="0.05"/>
                      </body>
                    </body>
                  </body>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>"""


def robot_body_xml() -> str:
    """The robot's <body> tree (goes inside <worldbody>); every body below the base is gravity
    compensated (gravcomp is a body attribute MuJoCo cannot default, so it is added here)."""
    return _BODY_RE.sub('<body gravcomp="1" name=', _robot_body_xml())


_BODY_RE = re.compile(r"<body name=")


def _robot_body_xml() -> str:
    a = ROBOT_RGBA
    t = TORSO_JOINTS
    tr = TORSO_RANGE
    sa, ca = math.sin(HEAD_PITCH), math.cos(HEAD_PITCH)
    l1, l2, l3 = TORSO_LINKS
    return f"""
    <body name="{BASE_BODY}" pos="0 0 0" childclass="robot">
      <joint name="base_x" type="slide" axis="1 0 0" damping="0" armature="0" range="-20 20"/>
      <joint name="base_y" type="slide" axis="0 1 0" damping="0" armature="0" range="-20 20"/>
      <joint name="base_yaw" type="hinge" axis="0 0 1" damping="0" armature="0" range="-100 100"/>
      <inertial pos="0 0 0.15" mass="60" diaginertia="3 3 3"/>
      <geom type="box" pos="0 0 0.17" size="0.26 0.22 0.12" rgba="{a['base']}"/>
      <geom type="cylinder" pos="0.16 0.17 0.06" euler="1.5708 0 0" size="0.05 0.02" rgba="0.1 0.1 0.1 1" contype="0"/>
      <geom type="cylinder" pos="0.16 -0.17 0.06" euler="1.5708 0 0" size="0.05 0.02" rgba="0.1 0.1 0.1 1" contype="0"/>
      <geom type="cylinder" pos="-0.16 0.17 0.06" euler="1.5708 0 0" size="0.05 0.02" rgba="0.1 0.1 0.1 1" contype="0"/>
      <geom type="cylinder" pos="-0.16 -0.17 0.06" euler="1.5708 0 0" size="0.05 0.02" rgba="0.1 0.1 0.1 1" contype="0"/>
      <body name="torso_link1" pos="0 0 {BASE_TOP}">
        <joint name="{t[0]}" axis="0 1 0" range="{tr[0][0]} {tr[0][1]}"/>
        <geom type="capsule" fromto="0 0 0.02 0 0 {l1 - 0.02}" size="0.07" rgba="{a['torso']}"/>
        <body name="torso_link2" pos="0 0 {l1}">
          <joint name="{t[1]}" axis="0 1 0" range="{tr[1][0]} {tr[1][1]}"/>
          <geom type="capsule" fromto="0 0 0.02 0 0 {l2 - 0.02}" size="0.065" rgba="{a['torso']}"/>
          <body name="torso_link3" pos="0 0 {l2}">
            <joint name="{t[2]}" axis="0 1 0" range="{tr[2][0]} {tr[2][1]}"/>
            <geom type="sphere" size="0.07" rgba="{a['joint']}"/>
            <body name="torso_link4" pos="0 0 {l3}">
              <joint name="{t[3]}" axis="0 0 1" range="{tr[3][0]} {tr[3][1]}"/>
              <geom type="box" size="0.09 0.17 0.08" rgba="{a['torso']}"/>
              <body name="zed_link" pos="0.06 0 0.2">
                <geom type="box" size="0.04 0.08 0.03" rgba="{a['base']}"/>
                <camera name="{HEAD_CAMERA}" pos="0.045 0 0" xyaxes="0 -1 0 {sa:.4f} 0 {ca:.4f}" fovy="80"/>
              </body>
              {_arm_xml("left")}
              {_arm_xml("right")}
            </body>
          </body>
        </body>
      </body>
    </body>"""


def robot_default_xml() -> str:
    """<default class="robot"> block: gravity compensation happens per body via gravcomp."""
    return """
    <default class="robot">
      <joint damping="2" armature="0.1" limited="true"/>
      <geom contype="2" conaffinity="0" density="400" condim="4" friction="1 0.02 0.001" solref="0.004 1"/>
      <site group="4"/>
    </default>"""


def robot_actuator_xml() -> str:
    """Actuators: 3 base servos, 4 torso, 7 left arm, 2 left fingers, 7 right arm, 2 right fingers."""
    lines = [
        '<position name="act_base_x" joint="base_x" kp="40000" kv="8000" ctrlrange="-20 20"/>',
        '<position name="act_base_y" joint="base_y" kp="40000" kv="8000" ctrlrange="-20 20"/>',
        '<position name="act_base_yaw" joint="base_yaw" kp="8000" kv="1500" ctrlrange="-100 100"/>',
    ]
    for name, (lo, hi) in zip(TORSO_JOINTS, TORSO_RANGE):
        lines.append(f'<position name="act_{name}" joint="{name}" kp="800" kv="60" ctrlrange="{lo} {hi}"/>')
    for side in ("left", "right"):
        for name, (lo, hi) in zip(ARM_JOINTS[side], ARM_RANGE):
            lines.append(f'<position name="act_{name}" joint="{name}" kp="300" kv="20" ctrlrange="{lo} {hi}"/>')
        for f in FINGER_JOINTS[side]:
            lines.append(f'<position name="act_{f}" joint="{f}" kp="400" kv="10" ctrlrange="0 {FINGER_MAX}" forcerange="-40 40"/>')
    return "\n      ".join(lines)


