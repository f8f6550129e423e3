"""Task registry: ``make_env(name, **cfg)``; unknown names list the valid ones and suggest the nearest."""

from __future__ import annotations

import difflib
import functools
import importlib
import warnings

from behavior_lab.sim.tasks.base import TaskDef

# task name -> module under behavior_lab.sim.tasks defining TASK
_MODULES = {
    "turning_on_radio": "turning_on_radio",
    "picking_up_trash": "picking_up_trash",
    "putting_dishes_away_after_cleaning": "putting_dishes_away_after_cleaning",
    "moving_boxes_to_storage": "moving_boxes_to_storage",
    "make_microwave_popcorn": "make_microwave_popcorn",
}
TASKS = tuple(_MODULES)
DEFAULT_TASKS = ("turning_on_radio", "picking_up_trash")


def _unknown(name: str) -> KeyError:
    near = difflib.get_close_matches(str(name), TASKS, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    return KeyError(f"unknown mini-BEHAVIOR task {name!r}.{hint} Valid tasks: {', '.join(TASKS)}")


def get_task(name: str) -> TaskDef:
    if name not in _MODULES:
        raise _unknown(name)
    return importlib.import_module(f"behavior_lab.sim.tasks.{_MODULES[name]}").TASK


def make_env(task: str, **cfg):
    """Build the environment for ``task``; ``cfg`` goes to ``MiniBehaviorEnv`` (image_size, max_steps)."""
    from behavior_lab.sim.env import MiniBehaviorEnv

    check_mujoco_version()
    return MiniBehaviorEnv(get_task(task), **cfg)


@functools.cache
def check_mujoco_version() -> str | None:
    """Warn once when MuJoCo is not the release the suite was validated with; returns the warning."""
    import mujoco

    from behavior_lab.sim import MUJOCO_VERSION

    if mujoco.__version__ == MUJOCO_VERSION:
        return None
    msg = (f"MuJoCo {mujoco.__version__} is installed; the embedded suite was validated with {MUJOCO_VERSION} "
           "(constraints.txt). Contact results differ between releases: expert success, demonstrations and "
           "scores may not match the documented figures (./scripts/setup.sh installs the pinned version).")
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return msg
