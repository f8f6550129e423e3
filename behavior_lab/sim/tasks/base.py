"""What a mini-BEHAVIOR task declares: scene, goal, randomisation, grasp/toggle/door specs, expert.

A task is data plus three functions (scene pieces, layout sampler, expert plan). The environment
(``behavior_lab.sim.env``) is generic over tasks; nothing task-specific lives there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from behavior_lab.data import schema
from behavior_lab.sim.predicates import Predicate
from behavior_lab.sim.scene import Piece

if TYPE_CHECKING:  # pragma: no cover
    from behavior_lab.sim.experts import Expert


@dataclass(frozen=True)
class GraspSpec:
    """Where each hand may grasp a body (site names), and whether it needs both hands at once."""

    sites: dict[str, tuple[str, ...]]  # {"left": (...), "right": (...)}
    two_handed: bool = False
    window: float = 0.045  # max distance grasp-site <-> object site for the weld to engage (m)
    # "weld" holds the object rigidly; "connect" pins the grasp point only (door handles: the door
    # turns or slides freely about the hand, so the hand keeps its own orientation)
    constraint: str = "weld"
    # Where a welded object sits in the hand: the offset (palm frame, m) from the hand's grasp site
    # to the object's nearest grasp site once the weld engages. None welds the object wherever it
    # is inside the window (OmniGibson-like). With a seat the weld pulls the object between the
    # fingers, so a grasp closed a few cm off still ends like the expert's: fingers stopped on the
    # object, the recorded gripper width what the demonstrations show while carrying.
    seat: tuple[float, float, float] | None = None
    # The finger width (m) a held object keeps its hand at. A real object between the fingers stops
    # them, so BEHAVIOR's proprio never reads a holding gripper as fully closed; fingers that close
    # beside an object (the box, gripped along its faces) or over one too thin to stop them (a
    # plate, the bag) would, and the seed's correction rule (spec §11.1) reads fully closed as a
    # failed grasp and reopens the hand at the next replan. None: the fingers go where the action
    # sends them (objects that stop them, like the seated cans).
    hold_width: float | None = None
    # Two-handed objects: a squeeze grasp engages when the two closing hands straddle the object
    # (each hand's grasp point beyond its own face along the face-to-face axis, the two outside gaps
    # summing to at most 2 x window) and each hand is within `window` of its face's site across that
    # axis (height, along the face). So the grasp tolerates a sideways offset of the hands as a pair
    # (a robot parked a few cm off to one side), as squeezing a real box with two palms does; without
    # it each hand must be within `window` of its own site. Each side names exactly one site.
    squeeze: bool = False

    def __post_init__(self) -> None:
        if self.squeeze and not (self.two_handed and self.constraint == "weld"
                                 and all(len(self.sites.get(s, ())) == 1 for s in ("left", "right"))):
            raise ValueError(f"GraspSpec.squeeze needs two_handed=True, constraint='weld' and exactly one site per "
                             f"hand; got two_handed={self.two_handed}, constraint={self.constraint!r}, sites={self.sites}")
        if self.seat is not None and (self.constraint != "weld" or len(self.seat) != 3):
            raise ValueError(f"GraspSpec.seat={self.seat!r} needs constraint='weld' (got {self.constraint!r}) "
                             "and three coordinates (palm frame, m)")
        if self.hold_width is not None and not 0.0 < self.hold_width < schema.GRIPPER_MAX_WIDTH:
            raise ValueError(f"GraspSpec.hold_width={self.hold_width!r}: expected a finger width in metres between 0 "
                             f"and {schema.GRIPPER_MAX_WIDTH} (fully open), exclusive")


@dataclass(frozen=True)
class ToggleSpec:
    """A push button: toggled_on latches once sign * q(joint) exceeds threshold."""

    joint: str
    sign: float
    threshold: float = 0.008


@dataclass(frozen=True)
class DoorSpec:
    """A door on a hinge (q in rad) or a slide (q in m); ``open`` holds when |q| > open_threshold."""

    joint: str
    open_threshold: float = 0.35


@dataclass(frozen=True)
class Pose2D:
    x: float
    y: float
    yaw: float = 0.0


@dataclass
class Layout:
    """One instance: robot start pose, static furniture poses, free-object poses (x, y, z, yaw)."""

    robot: Pose2D
    static: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    free: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskDef:
    """A mini-BEHAVIOR task. ``mean_demo_length`` is the measured mean expert length (30 Hz frames);
    the episode timeout is twice that, as in BEHAVIOR's eval (facts §3.1)."""

    name: str
    task_id: int
    description: str
    mean_demo_length: int
    pieces: Callable[[], list[Piece]]
    sample_layout: Callable[[np.random.Generator], Layout]
    goal_options: tuple[tuple[Predicate, ...], ...]
    expert_plan: Callable[["Expert"], Iterator[None]]
    grasps: dict[str, GraspSpec] = field(default_factory=dict)
    toggles: dict[str, ToggleSpec] = field(default_factory=dict)
    doors: dict[str, DoorSpec] = field(default_factory=dict)
    torso: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    # privileged observation (schema.TASK_INFO_KEY): sites or bodies whose positions, in the robot
    # base frame, make up `observation.task_info` (at most schema.TASK_INFO_POINTS)
    info_points: tuple[str, ...] = ()

    @property
    def max_steps(self) -> int:
        return int(2 * self.mean_demo_length)


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))
