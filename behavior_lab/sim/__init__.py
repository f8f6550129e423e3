"""MuJoCo "mini-BEHAVIOR": an embedded suite speaking BEHAVIOR-1K's interfaces (DESIGN §1, §5).

``make_env(task, **cfg)`` builds a task environment; see ``behavior_lab.sim.registry``.
MUJOCO_GL must be chosen before mujoco is imported (sim-measurements.md §1), so it is set here,
and the registry is imported lazily so that ``import behavior_lab.sim`` stays cheap.
"""

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")
logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL's INFO chatter under Hydra logging

__all__ = ["TASKS", "make_env"]

# Version of what the suite records: bump it when scenes, experts or the recorded columns change,
# so that a sweep (whose dataset unit id includes it) records new demonstrations instead of reusing
# stale ones. 2: observation.task_info column, 10 cm radio button. 3: the hands' grasp points in
# task_info's last two slots; picking_up_trash stands its cans in a row of jittered slots, named
# by rank from the right. 4: picking_up_trash's assisted grasp has an 8 cm window and a seat.
# 5: a held plate, popcorn bag or box keeps its hand's fingers apart (GraspSpec.hold_width).
# 6: moving_boxes_to_storage's box is a squeeze grasp (GraspSpec.squeeze), hands 7 cm out.
SUITE_VERSION = 6
# The MuJoCo release the suite was validated with (expert success, the measured figures; pinned in
# constraints.txt). Contact results differ between releases, so another version is warned about and
# keys the sweep's generated datasets apart.
MUJOCO_VERSION = "4.0.0"


def __getattr__(name):
    if name in __all__:
        from behavior_lab.sim import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'behavior_lab.sim' has no attribute {name!r}")
