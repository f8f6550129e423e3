"""Reach and grasp diagnostics of one episode: how close the hands came to what the task is about.

A policy at q = 0 may be nowhere near the objects or a centimetre short of a grasp; the q-score
cannot tell these apart. The embedded env therefore tracks, per episode:

- ``closest_approach_m``: for every task target — each graspable body (its grasp sites, e.g. a
  can's centre, a box's side faces, a door handle) and each push button (its moving body) — the
  smallest distance over the episode from either hand's grasp point (robot.GRASP_SITE) to it;
- ``grasp_events``: for every graspable body, how many times the assisted grasp engaged on it
  (a two-handed grasp counts once).

``now()`` gives the same distances at the current step and what each hand holds (the per-step
columns of ``behavior-lab eval ... trace=true``).

OmniGibson's metrics have no such keys; reports show them where the episodes carry them.
"""

from __future__ import annotations

import mujoco
import numpy as np

from behavior_lab.data.schema import DIAGNOSTICS_KEY
from behavior_lab.sim import robot
from behavior_lab.sim.grasp import SIDES, AssistedGrasp
from behavior_lab.sim.tasks.base import TaskDef

__all__ = ["DIAGNOSTICS_KEY", "ManipulationDiagnostics"]


class ManipulationDiagnostics:
    def __init__(self, model: mujoco.MjModel, task: TaskDef, grasp: AssistedGrasp):
        self.grasp = grasp
        self.hand_sites = np.array([model.site(robot.GRASP_SITE[s]).id for s in SIDES])
        # every target's points, sites first then bodies, each tagged with its target's index
        self._names: list[str] = []
        sites, site_owner, bodies, body_owner = [], [], [], []
        for body, spec in task.grasps.items():
            for n in dict.fromkeys(n for side in SIDES for n in spec.sites.get(side, ())):
                sites.append(model.site(n).id)
                site_owner.append(len(self._names))
            self._names.append(body)
        for name, toggle in task.toggles.items():  # a button: the body its joint moves
            bodies.append(int(model.jnt_bodyid[model.joint(toggle.joint).id]))
            body_owner.append(len(self._names))
            self._names.append(name)
        self._sites, self._bodies = np.array(sites, dtype=int), np.array(bodies, dtype=int)
        # grasp targets come before buttons, so the points are already grouped per target (reduceat)
        owner = np.array(site_owner + body_owner, dtype=int)
        self._starts = np.searchsorted(owner, np.arange(len(self._names)))
        self._closest = np.full(len(self._names), np.inf)
        self._current = np.full(len(self._names), np.inf)
        self.grasp_events = dict.fromkeys(task.grasps, 0)
        self._held: set[str] = set()

    def reset(self, data: mujoco.MjData) -> None:
        self._closest[:] = np.inf
        self.grasp_events = dict.fromkeys(self.grasp_events, 0)
        self._held = set()
        self.update(data)

    def update(self, data: mujoco.MjData) -> None:
        """Call after every control step (after the assisted grasp has been updated)."""
        if self._names:
            hands = data.site_xpos[self.hand_sites]  # (2, 3)
            points = np.concatenate([data.site_xpos[self._sites], data.xpos[self._bodies]])
            d = np.sqrt(((points[:, None] - hands[None]) ** 2).sum(-1)).min(1)
            self._current = np.minimum.reduceat(d, self._starts)
            np.minimum(self._closest, self._current, out=self._closest)
        held = {b for b in self.grasp.held.values() if b is not None}
        for body in held - self._held:
            self.grasp_events[body] += 1
        self._held = held

    def now(self) -> dict:
        """This step: each target's distance to the nearer hand, and the body each hand holds."""
        return {"distance_m": {k: float(v) for k, v in zip(self._names, self._current)},
                "held": dict(self.grasp.held)}

    def summary(self) -> dict:
        return {"closest_approach_m": {k: float(v) for k, v in zip(self._names, self._closest)},
                "grasp_events": dict(self.grasp_events)}
