"""Damped-least-squares inverse kinematics over one arm (mj_jacSite), on a scratch MjData.

Used by the scripted experts only (sim-measurements.md §1 "IK and assisted grasp"): position plus
orientation of the grasp site, a null-space pull towards the arm's home pose, joint limits clipped
after each iteration. The real simulation state is never touched.
"""

from __future__ import annotations

import mujoco
import numpy as np

from behavior_lab.sim import robot


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Axis-angle vector (world frame) rotating ``current`` (3x3) onto ``target`` (3x3)."""
    qc, qt, qe = np.zeros(4), np.zeros(4), np.zeros(4)
    mujoco.mju_mat2Quat(qc, current.reshape(-1))
    mujoco.mju_mat2Quat(qt, target.reshape(-1))
    qci = np.zeros(4)
    mujoco.mju_negQuat(qci, qc)
    mujoco.mju_mulQuat(qe, qt, qci)
    v = np.zeros(3)
    mujoco.mju_quat2Vel(v, qe, 1.0)
    return v


class ArmIK:
    """Solve arm joint targets for a desired grasp-site pose (world frame)."""

    def __init__(self, model: mujoco.MjModel, damping: float = 0.05, rot_weight: float = 0.35,
                 null_gain: float = 0.05, iterations: int = 6):
        self.model = model
        self.scratch = mujoco.MjData(model)
        self.damping, self.rot_weight, self.null_gain, self.iterations = damping, rot_weight, null_gain, iterations
        self.qadr = {s: np.array([model.joint(n).qposadr[0] for n in robot.ARM_JOINTS[s]]) for s in ("left", "right")}
        self.dadr = {s: np.array([model.joint(n).dofadr[0] for n in robot.ARM_JOINTS[s]]) for s in ("left", "right")}
        self.site = {s: model.site(robot.GRASP_SITE[s]).id for s in ("left", "right")}
        self.lo = np.array([r[0] for r in robot.ARM_RANGE])
        self.hi = np.array([r[1] for r in robot.ARM_RANGE])
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def solve(self, qpos: np.ndarray, side: str, q_arm: np.ndarray, target_pos: np.ndarray,
              target_rot: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Start from the full ``qpos`` with the arm at ``q_arm``; return (arm joints, position error)."""
        m, d = self.model, self.scratch
        d.qpos[:] = qpos
        q = np.clip(np.asarray(q_arm, dtype=float).copy(), self.lo, self.hi)
        qa, da, sid = self.qadr[side], self.dadr[side], self.site[side]
        home = robot.ARM_HOME[side]
        err_p = np.inf
        for _ in range(self.iterations):
            d.qpos[qa] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, sid)
            e_p = target_pos - d.site_xpos[sid]
            err_p = float(np.linalg.norm(e_p))
            Jp = self._jacp[:, da]
            if target_rot is not None:
                e_r = rotation_error(d.site_xmat[sid].reshape(3, 3), target_rot) * self.rot_weight
                J = np.vstack([Jp, self._jacr[:, da] * self.rot_weight])
                e = np.concatenate([e_p, e_r])
            else:
                J, e = Jp, e_p
            JJt = J @ J.T + (self.damping ** 2) * np.eye(J.shape[0])
            J_pinv = J.T @ np.linalg.solve(JJt, np.eye(J.shape[0]))
            dq = J_pinv @ e
            null = (np.eye(7) - J_pinv @ J) @ (home - q) * self.null_gain
            q = np.clip(q + dq + null, self.lo, self.hi)
        d.qpos[qa] = q
        mujoco.mj_kinematics(m, d)
        err_p = float(np.linalg.norm(target_pos - d.site_xpos[sid]))
        return q, err_p
