"""Assisted grasping as in OmniGibson: a closing gripper near a graspable object welds it to the palm.

Every (hand, graspable body) pair has an inactive ``<weld>`` (``<connect>`` for door handles) in
the model. When a hand is
commanded to close (gripper action < 0) while its grasp site is within the object's grasp window,
the weld's relative pose is written from the current state and the weld is switched on
(sim-measurements.md §1 recipe, runtime ``eq_data``; ``mj_setConst`` is never called). Opening the
hand (action > 0) releases it. A two-handed object (a big box) engages only when both hands close
within their windows (or, with ``squeeze``, when the hands straddle it), and drops as soon as either
hand opens. A grasp spec with a ``seat`` pulls
the object into the hand as the weld engages (the weld's relative pose puts the object's grasp site
at the seat), instead of holding it wherever it was inside the window.
"""

from __future__ import annotations

import mujoco
import numpy as np

from behavior_lab.sim import robot
from behavior_lab.sim.tasks.base import GraspSpec

SIDES = ("left", "right")
SQUEEZE_TOUCH = 0.01  # m: a squeezing hand's grasp point may be this far inside its face's plane (fingers on the face)


def weld_name(side: str, body: str) -> str:
    return f"grasp_{side}_{body}"


def weld_xml(grasps: dict[str, GraspSpec]) -> str:
    """The inactive weld equalities the model needs for ``grasps``."""
    lines = []
    for body, spec in grasps.items():
        for side in SIDES:
            if spec.sites.get(side):
                if spec.constraint == "connect":
                    lines.append(f'<connect name="{weld_name(side, body)}" body1="{robot.PALM_BODY[side]}" '
                                 f'body2="{body}" anchor="0 0 0" active="false" solref="0.01 1"/>')
                else:
                    lines.append(f'<weld name="{weld_name(side, body)}" body1="{robot.PALM_BODY[side]}" '
                                 f'body2="{body}" active="false" solref="0.01 1"/>')
    return "\n    ".join(lines)


class AssistedGrasp:
    def __init__(self, model: mujoco.MjModel, grasps: dict[str, GraspSpec]):
        self.model = model
        self.grasps = dict(grasps)  # this env's own: a test may swap a spec without touching the task
        self.palm = {s: model.body(robot.PALM_BODY[s]).id for s in SIDES}
        self.hand_site = {s: model.site(robot.GRASP_SITE[s]).id for s in SIDES}
        self.weld = {}
        self.obj_sites = {}
        for body, spec in grasps.items():
            for side in SIDES:
                if spec.sites.get(side):
                    self.weld[(side, body)] = model.equality(weld_name(side, body)).id
                    self.obj_sites[(side, body)] = [model.site(n).id for n in spec.sites[side]]
        self.body_id = {b: model.body(b).id for b in grasps}
        self.held: dict[str, str | None] = {s: None for s in SIDES}

    def reset(self, data: mujoco.MjData) -> None:
        for e in self.weld.values():
            data.eq_active[e] = 0
        self.held = {s: None for s in SIDES}

    def is_grasped(self, body: str) -> bool:
        return body in self.held.values()

    def _nearest_site(self, data, side: str, body: str) -> tuple[int, float]:
        """The body's grasp site nearest to the hand's grasp point, and its distance (m)."""
        hp = data.site_xpos[self.hand_site[side]]
        return min(((s, float(np.linalg.norm(data.site_xpos[s] - hp))) for s in self.obj_sites[(side, body)]),
                   key=lambda sd: sd[1])

    def _distance(self, data, side: str, body: str) -> float:
        return self._nearest_site(data, side, body)[1]

    def _candidate(self, data, side: str) -> str | None:
        best, best_d = None, np.inf
        for (s, body) in self.weld:
            if s != side or self.is_grasped(body):
                continue
            dist = self._distance(data, side, body)
            inside = self.squeezes(data, body) if self.grasps[body].squeeze else dist <= self.grasps[body].window
            if inside and dist < best_d:
                best, best_d = body, dist
        return best

    def squeezes(self, data, body: str) -> bool:
        """Whether the two hands straddle ``body`` as its squeeze grasp needs (GraspSpec.squeeze)."""
        window = self.grasps[body].window
        s_left, s_right = (data.site_xpos[self.obj_sites[(side, body)][0]] for side in SIDES)
        axis = s_left - s_right
        width = float(np.linalg.norm(axis))
        axis = axis / width
        centre = 0.5 * (s_left + s_right)
        gaps = []
        for side, site, sign in (("left", s_left, 1.0), ("right", s_right, -1.0)):
            hand = data.site_xpos[self.hand_site[side]]
            along = float((hand - centre) @ axis) * sign  # > width / 2: beyond this hand's own face
            rel = hand - site
            across = float(np.linalg.norm(rel - (rel @ axis) * axis))
            if along < 0.5 * width - SQUEEZE_TOUCH or across > window:
                return False
            gaps.append(max(along - 0.5 * width, 0.0))
        return sum(gaps) <= 2.0 * window

    def _attach(self, data, side: str, body: str) -> None:
        m = self.model
        e = self.weld[(side, body)]
        b1, b2 = self.palm[side], self.body_id[body]
        R1 = data.xmat[b1].reshape(3, 3)
        if self.grasps[body].constraint == "connect":
            # pin the hand's grasp point to where it currently is on the object (both body frames)
            p = data.site_xpos[self.hand_site[side]]
            R2 = data.xmat[b2].reshape(3, 3)
            m.eq_data[e, 0:3] = R1.T @ (p - data.xpos[b1])
            m.eq_data[e, 3:6] = R2.T @ (p - data.xpos[b2])
            data.eq_active[e] = 1
            self.held[side] = body
            return
        q1i, rq = np.zeros(4), np.zeros(4)
        m.eq_data[e, 0:3] = 0.0
        seat = self.grasps[body].seat
        if seat is None:  # hold the object where it is
            m.eq_data[e, 3:6] = R1.T @ (data.xpos[b2] - data.xpos[b1])
        else:  # pull the object's nearest grasp site to the seat (palm frame), keeping its orientation
            R2 = data.xmat[b2].reshape(3, 3)
            site = self._nearest_site(data, side, body)[0]
            hand_in_palm = R1.T @ (data.site_xpos[self.hand_site[side]] - data.xpos[b1])
            site_in_obj = R2.T @ (data.site_xpos[site] - data.xpos[b2])
            m.eq_data[e, 3:6] = hand_in_palm + np.asarray(seat) - (R1.T @ R2) @ site_in_obj
        mujoco.mju_negQuat(q1i, data.xquat[b1])
        mujoco.mju_mulQuat(rq, q1i, data.xquat[b2])
        m.eq_data[e, 6:10] = rq
        m.eq_data[e, 10] = 1.0
        data.eq_active[e] = 1
        self.held[side] = body

    def _detach(self, data, side: str) -> None:
        body = self.held[side]
        if body is None:
            return
        data.eq_active[self.weld[(side, body)]] = 0
        self.held[side] = None
        if self.grasps[body].two_handed:
            other = "right" if side == "left" else "left"
            if self.held[other] == body:
                data.eq_active[self.weld[(other, body)]] = 0
                self.held[other] = None

    def update(self, data: mujoco.MjData, gripper_cmd: dict[str, float]) -> None:
        """Apply this control step's gripper commands (in [-1, 1]; < 0 closes)."""
        for side in SIDES:
            if gripper_cmd[side] > 0.0:
                self._detach(data, side)
        closing = [s for s in SIDES if gripper_cmd[s] < 0.0 and self.held[s] is None]
        for side in closing:
            body = self._candidate(data, side)
            if body is None:
                continue
            if self.grasps[body].two_handed:
                other = "right" if side == "left" else "left"
                spec = self.grasps[body]
                # a squeeze candidate was found with both hands straddling it (_candidate checked)
                other_in = spec.squeeze or self._distance(data, other, body) <= spec.window
                if other in closing and self.held[other] is None and other_in:
                    self._attach(data, side, body)
                    self._attach(data, other, body)
            else:
                self._attach(data, side, body)
