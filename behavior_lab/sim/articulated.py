"""Articulated furniture made of primitives: a sliding-door cabinet and a microwave with a side-hinged
door and a start button. Both open towards -x (towards a robot standing in front of them).

Door bodies are gravity compensated and carry joint friction, so a door stays where it is left
(as OmniGibson doors do). Names: joint ``<name>_door_joint``, handle site ``<name>_handle``, region
``<name>_inside``; the microwave's button joint is ``<name>_button_joint``.
"""

from __future__ import annotations

from behavior_lab.sim.scene import Piece, _paint

HANDLE_RGBA = "0.95 0.80 0.10 1"


def handle_bar(y: float, z: float, name: str, half_len: float = 0.065, standoff: float = 0.06) -> str:
    """A vertical bar handle standing ``standoff`` in front of a door (local -x), centred at (y, z);
    site ``<name>_handle`` at its top end, where a top-down hand grasps it. The standoff leaves room
    for the palm in front of the door."""
    return (f'<geom type="capsule" fromto="{-standoff} {y:.3f} {z - half_len:.3f} {-standoff} {y:.3f} {z + half_len:.3f}" '
            f'size="0.012" rgba="{HANDLE_RGBA}" mass="0.05"/>'
            f'<geom type="box" pos="{-standoff / 2 - 0.005:.3f} {y:.3f} {z + half_len - 0.005:.3f}" size="{standoff / 2 - 0.005:.3f} 0.008 0.008" rgba="{HANDLE_RGBA}" mass="0.01"/>'
            f'<geom type="box" pos="{-standoff / 2 - 0.005:.3f} {y:.3f} {z - half_len + 0.005:.3f}" size="{standoff / 2 - 0.005:.3f} 0.008 0.008" rgba="{HANDLE_RGBA}" mass="0.01"/>'
            f'<site name="{name}_handle" type="sphere" pos="{-standoff} {y:.3f} {z + half_len:.3f}" size="0.01"/>')


def sliding_cabinet(name: str, pos=(1.0, 0.0), half=(0.2, 0.34, 0.2), base_height=0.55,
                    rgba="0.55 0.60 0.68 1", door_rgba="0.20 0.55 0.55 1") -> Piece:
    """A cabinet on a pedestal. Its left (+y) half is closed by a fixed front panel; the right half
    is the opening, covered at q = 0 by a door that slides left (+y) in front of the fixed panel,
    q in [0, hy] m. Handle: a vertical bar near the door's right edge."""
    hx, hy, hz = half
    t = 0.015
    z0 = base_height + hz
    shell = "".join([
        f'<geom type="box" pos="{hx - t} 0 0" size="{t} {hy} {hz}"/>',
        f'<geom type="box" pos="0 {hy - t} 0" size="{hx} {t} {hz}"/>',
        f'<geom type="box" pos="0 {-hy + t} 0" size="{hx} {t} {hz}"/>',
        f'<geom type="box" pos="0 0 {hz - t}" size="{hx} {hy} {t}"/>',
        f'<geom type="box" pos="0 0 {-hz + t}" size="{hx} {hy} {t}"/>',
        f'<geom type="box" pos="{-hx + t} {hy / 2:.3f} 0" size="{t} {hy / 2:.3f} {hz}"/>',
    ])
    dw = hy / 2  # door half-width: it covers the right half
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} {z0}" childclass="furniture">
      <geom type="box" pos="0 0 {-hz - base_height / 2:.3f}" size="{hx * 0.9:.3f} {hy * 0.9:.3f} {base_height / 2:.3f}" rgba="0.35 0.35 0.38 1"/>
      {_paint(shell, rgba)}
      <site name="{name}_inside" pos="0 0 0" size="{hx - 2 * t:.3f} {hy - 2 * t:.3f} {hz - 2 * t:.3f}"/>
      <body name="{name}_door" pos="{-hx - 0.025:.3f} {-dw:.3f} 0" gravcomp="1">
        <joint name="{name}_door_joint" type="slide" axis="0 1 0" range="0 {hy:.3f}" damping="8" frictionloss="1"/>
        <geom type="box" size="0.01 {dw - 0.005:.3f} {hz - 0.005:.3f}" rgba="{door_rgba}" mass="1.0"/>
        {handle_bar(-dw + 0.05, 0.0, name)}
      </body>
    </body>""")


def microwave(name: str, pos=(1.0, 0.0, 0.72), half=(0.18, 0.26, 0.16), rgba="0.85 0.85 0.88 1",
              door_rgba="0.15 0.15 0.18 1") -> Piece:
    """A microwave on a counter at height pos[2]. The cavity is the -y part; a control panel with a
    green start button (pressed along +x) fills the +y end. The door is hinged on its right (-y)
    edge and swings open towards the robot's right: q in [0, 1.75] rad, 0 = closed; a vertical bar
    handle sits near its free (+y) edge."""
    hx, hy, hz = half
    t = 0.012
    panel = 0.07  # half-width of the control panel
    cav = hy - panel  # cavity half-width
    cy = -panel  # cavity centre (y)
    div = cy + cav + t  # divider wall between cavity and panel
    w = 2 * cav + t  # door width
    shell = "".join([
        f'<geom type="box" pos="{hx - t} 0 0" size="{t} {hy} {hz}"/>',
        f'<geom type="box" pos="0 {-hy + t} 0" size="{hx} {t} {hz}"/>',
        f'<geom type="box" pos="0 {div:.3f} 0" size="{hx} {t} {hz}"/>',
        f'<geom type="box" pos="0 0 {hz - t}" size="{hx} {hy} {t}"/>',
        f'<geom type="box" pos="0 0 {-hz + t}" size="{hx} {hy} {t}"/>',
        # control panel: fills the +y end between the plates (no coplanar faces, no z-fighting)
        f'<geom type="box" pos="0 {(div + t + hy) / 2:.3f} 0" size="{hx - 0.001:.3f} {(hy - div - t) / 2:.3f} {hz - 2 * t:.3f}" '
        f'rgba="0.30 0.30 0.33 1"/>',
    ])
    return Piece(f"""
    <body name="{name}" pos="{pos[0]} {pos[1]} {pos[2] + hz:.3f}" childclass="furniture">
      {_paint(shell, rgba)}
      <site name="{name}_inside" pos="0 {cy} 0" size="{hx - 2 * t:.3f} {cav - t:.3f} {hz - 2 * t:.3f}"/>
      <body name="{name}_door" pos="{-hx - 0.012:.3f} {-hy:.3f} 0" gravcomp="1">
        <joint name="{name}_door_joint" type="hinge" axis="0 0 1" range="0 1.75" damping="1.5" frictionloss="0.3"/>
        <geom type="box" pos="0 {w / 2:.3f} 0" size="0.01 {w / 2:.3f} {hz - 0.004:.3f}" rgba="{door_rgba}" mass="0.6"/>
        <geom type="box" pos="-0.011 {w / 2 - 0.02:.3f} 0" size="0.002 {w / 2 * 0.7:.3f} {hz * 0.6:.3f}" rgba="0.35 0.45 0.55 1" contype="0" conaffinity="0" mass="0.001"/>
        {handle_bar(w - 0.05, 0.0, name)}
      </body>
      <body name="{name}_button" pos="{-hx - 0.002:.3f} {(div + t + hy) / 2:.3f} {-0.04:.3f}">
        <joint name="{name}_button_joint" type="slide" axis="1 0 0" range="0 0.02" stiffness="300" springref="0" damping="3"/>
        <geom type="box" pos="-0.01 0 0" size="0.01 0.035 0.035" rgba="0.10 0.85 0.20 1" mass="0.02" contype="0" conaffinity="2"/>
        <site name="{name}_button_site" type="sphere" pos="-0.02 0 0" size="0.01"/>
      </body>
    </body>""")
