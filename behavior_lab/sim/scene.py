"""Scene builder: floor, lights, the robot, and primitive furniture/objects -> one MJCF string.

Every piece is a function returning an MJCF fragment plus the names the task and the predicates
need (bodies, joints, region sites). Static furniture bodies carry no joint, so a task can move them
per instance by writing ``model.body_pos`` at reset. Free objects get a free joint named
``<name>_joint``. Region sites (``<name>_inside`` / ``<name>_top``) are invisible boxes used by the
``inside`` and ``on_top`` predicates; ``<name>_grasp*`` sites are the points the assisted grasp and
the experts aim at.

Visuals follow the learnability advice (DESIGN §8): plain matte colours, one distinct hue per
task-relevant object, no shadows, reflections or skybox (sim-measurements.md §1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from behavior_lab.sim import robot

# geom classes: furniture/objects collide with the robot (contype 2) and with each other.
_WORLD_DEFAULTS = """
    <default class="furniture">
      <geom contype="1" conaffinity="3" condim="3" friction="1 0.01 0.001" rgba="0.62 0.48 0.34 1"/>
      <site type="box" group="4" rgba="0 1 0 0"/>
    </default>
    <default class="object">
      <geom contype="1" conaffinity="3" condim="4" friction="1.2 0.02 0.001" solref="0.004 1"/>
      <site group="4" rgba="1 0 1 0"/>
    </default>"""


def _paint(geoms: str, rgba: str) -> str:
    """Give every <geom> in ``geoms`` that has no colour of its own the colour ``rgba``."""
    return re.sub(r"<geom (?![^>]*rgba=)", f'<geom rgba="{rgba}" ', geoms)


@dataclass
class Piece:
    """One scene element: MJCF for <worldbody>, optional <equality> additions."""

    body: str
    equality: str = ""


def table(name: str, pos=(1.0, 0.0), half=(0.35, 0.5), height=0.72, rgba="0.62 0.48 0.34 1") -> Piece:
    hx, hy = half
    legs = "".join(
        f'<geom type="box" pos="{sx * (hx - 0.04):.3f} {sy * (hy - 0.04):.3f} {height / 2 - 0.01:.3f}" '
        f'size="0.025 0.025 {height / 2 - 0.01:.3f}" rgba="0.35 0.27 0.2 1"/>'
        for sx in (-1, 1) for sy in (-1, 1)
    )
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} 0" childclass="furniture">
      <geom type="box" pos="0 0 {height - 0.02:.3f}" size="{hx} {hy} 0.02" rgba="{rgba}"/>
      {legs}
      <site name="{name}_top" pos="0 0 {height + 0.06:.3f}" size="{hx} {hy} 0.06"/>
    </body>""")


def radio(name: str, pos=(1.0, 0.0, 0.72), yaw=0.0, button_radius: float = 0.05) -> Piece:
    """A radio with a spring-loaded push button on top (slide joint ``<name>_button_joint``).

    The button is a large 10 cm power button (it was 6 cm): a from-scratch tiny policy ends its
    press 4-6 cm from the centre after a CPU-sized training (docs/status.md), and the task is about
    reaching and pressing, not millimetre precision (issue 5: retune tasks the policy cannot learn).

    Buttons touch only the robot (conaffinity 2), never their own housing."""
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} {pos[2]}" euler="0 0 {yaw}" childclass="furniture">
      <geom type="box" pos="0 0 0.065" size="0.09 0.15 0.065" rgba="0.75 0.12 0.10 1"/>
      <geom type="cylinder" pos="-0.091 0.05 0.065" euler="0 1.5708 0" size="0.045 0.002" rgba="0.15 0.15 0.15 1" contype="0" conaffinity="0"/>
      <geom type="capsule" fromto="0 -0.11 0.13 0 -0.13 0.3" size="0.006" rgba="0.7 0.7 0.7 1" contype="0" conaffinity="0"/>
      <body name="{name}_button" pos="0 -0.03 0.13">
        <joint name="{name}_button_joint" type="slide" axis="0 0 1" range="-0.02 0" stiffness="300" springref="0" damping="3"/>
        <geom type="cylinder" pos="0 0 0.012" size="{button_radius} 0.012" rgba="1.0 0.85 0.05 1" mass="0.02" contype="0" conaffinity="2"/>
        <site name="{name}_button_site" pos="0 0 0.024" size="0.01" type="sphere"/>
      </body>
    </body>""")


def bin_(name: str, pos=(0.5, -0.6), half=0.16, height=0.32, rgba="0.10 0.35 0.75 1") -> Piece:
    """An open-topped bin; ``<name>_inside`` is the region below its rim."""
    h2, t = height / 2, 0.012
    walls = "".join([
        f'<geom type="box" pos="{half - t} 0 {h2}" size="{t} {half} {h2}"/>',
        f'<geom type="box" pos="{-half + t} 0 {h2}" size="{t} {half} {h2}"/>',
        f'<geom type="box" pos="0 {half - t} {h2}" size="{half} {t} {h2}"/>',
        f'<geom type="box" pos="0 {-half + t} {h2}" size="{half} {t} {h2}"/>',
        f'<geom type="box" pos="0 0 {t}" size="{half} {half} {t}"/>',
    ])
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} 0" childclass="furniture">
      {_paint(walls, rgba)}
      <site name="{name}_inside" pos="0 0 {h2 + 0.01:.3f}" size="{half - t} {half - t} {h2 + 0.02:.3f}"/>
    </body>""")


def can(name: str, pos=(0.8, 0.0, 0.8), rgba="0.9 0.1 0.1 1", radius=0.028, half_height=0.055) -> Piece:
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} {pos[2]}" childclass="object">
      <freejoint name="{name}_joint"/>
      <geom type="cylinder" size="{radius} {half_height}" rgba="{rgba}" mass="0.08"/>
      <geom type="cylinder" pos="0 0 {half_height}" size="{radius * 0.8:.4f} 0.002" rgba="0.85 0.85 0.85 1" mass="0.001"/>
      <site name="{name}_grasp" pos="0 0 0.0" size="0.01"/>
    </body>""")


def plate(name: str, pos=(0.8, 0.0, 0.8), rgba="0.95 0.95 0.95 1", radius=0.085) -> Piece:
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} {pos[2]}" childclass="object">
      <freejoint name="{name}_joint"/>
      <geom type="cylinder" size="{radius} 0.008" rgba="{rgba}" mass="0.15"/>
      <geom type="cylinder" pos="0 0 0.009" size="{radius * 0.55:.3f} 0.002" rgba="0.55 0.75 0.95 1" mass="0.001" contype="0" conaffinity="0"/>
      <site name="{name}_grasp" pos="0 0 0.0" size="0.01"/>
    </body>""")


def carry_box(name: str, pos=(0.8, 0.0, 0.8), half=(0.11, 0.17, 0.09), rgba="0.80 0.58 0.25 1") -> Piece:
    """A box wide enough to need both hands: grasp sites on its left (+y) and right (-y) faces."""
    hx, hy, hz = half
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} {pos[2]}" childclass="object">
      <freejoint name="{name}_joint"/>
      <geom type="box" size="{hx} {hy} {hz}" rgba="{rgba}" mass="2.0"/>
      <geom type="box" pos="0 0 {hz}" size="{hx * 0.9:.3f} 0.02 0.002" rgba="0.55 0.35 0.12 1" mass="0.001" contype="0" conaffinity="0"/>
      <site name="{name}_grasp_left" pos="0 {hy} 0.0" size="0.01"/>
      <site name="{name}_grasp_right" pos="0 {-hy} 0.0" size="0.01"/>
    </body>""")


def shelf(name: str, pos=(1.0, 0.8), half=(0.25, 0.4), height=0.55, rgba="0.30 0.55 0.30 1") -> Piece:
    hx, hy = half
    posts = "".join(
        f'<geom type="box" pos="{sx * (hx - 0.02):.3f} {sy * (hy - 0.02):.3f} {height / 2:.3f}" size="0.02 0.02 {height / 2:.3f}"/>'
        for sx in (-1, 1) for sy in (-1, 1)
    )
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} 0" childclass="furniture">
      {_paint(f'<geom type="box" pos="0 0 {height - 0.015:.3f}" size="{hx} {hy} 0.015"/>'
               f'<geom type="box" pos="0 0 0.12" size="{hx} {hy} 0.015"/>' + posts, rgba)}
      <site name="{name}_top" pos="0 0 {height + 0.1:.3f}" size="{hx} {hy} 0.1"/>
    </body>""")


def popcorn_bag(name: str, pos=(0.8, 0.0, 0.8), rgba="0.95 0.55 0.75 1") -> Piece:
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} {pos[2]}" childclass="object">
      <freejoint name="{name}_joint"/>
      <geom type="box" size="0.05 0.07 0.025" rgba="{rgba}" mass="0.1"/>
      <site name="{name}_grasp" pos="0 0 0" size="0.01"/>
    </body>""")


def build_mjcf(name: str, pieces: list[Piece], floor_rgba="0.80 0.78 0.74 1", offscreen_px: int = 224) -> str:
    """Assemble the full model: options (2 ms, implicitfast, elliptic cones), robot, pieces."""
    bodies = "\n".join(p.body for p in pieces)
    eq = "\n".join(p.equality for p in pieces if p.equality)
    return f"""<mujoco model="{name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <size memory="20M"/>
  <visual>
    <global offwidth="{offscreen_px}" offheight="{offscreen_px}"/>
    <quality shadowsize="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0 0 0"/>
    <map znear="0.02"/>
  </visual>
  <default>
    {robot.robot_default_xml()}
    {_WORLD_DEFAULTS}
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="10 10 0.1" rgba="{floor_rgba}" contype="1" conaffinity="1"/>
    <geom name="wall_back" type="box" pos="3.2 0 1.0" size="0.05 4 1.0" rgba="0.88 0.88 0.84 1" contype="0" conaffinity="0"/>
    <light name="sun" pos="0 0 4" dir="0.2 0.1 -1" directional="true" castshadow="false" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
    {robot.robot_body_xml()}
    {bodies}
  </worldbody>
  <equality>
    {eq}
  </equality>
  <actuator>
      {robot.robot_actuator_xml()}
  </actuator>
</mujoco>"""
