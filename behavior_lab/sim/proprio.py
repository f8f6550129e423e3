"""BEHAVIOR's 256-D R1Pro proprio vector and 21-D camera poses from a MuJoCo state.

Index map: ``schema.PROPRIO_INDICES`` (facts §2.4). Conventions, matching OmniGibson where the
facts say so and stated here where they do not:
- quaternions are (x, y, z, w), as OmniGibson writes them;
- poses "in base frame" are relative to ``base_link`` (planar x, y, yaw at floor height);
- joint_qpos (28) = 6 virtual base joints (x, y, z, rx, ry, rz) + torso 4 + arms interleaved L/R +
  left fingers + right fingers (facts §2.4 PROPRIO_QPOS_INDICES); z/rx/ry are 0 for a planar base;
- base_qvel is the base velocity in the robot frame (vx, vy, wz), i.e. the quantity the base action
  commands (the convention the 2026 data adopted, facts §2.3), so ``schema.extract_state_from_proprio``
  yields a state in exactly the action's units;
- joint_qeffort is the actuator force on each joint (MuJoCo ``qfrc_actuator``).
"""

from __future__ import annotations

import mujoco
import numpy as np

from behavior_lab.data import schema
from behavior_lab.sim import robot

I = schema.PROPRIO_INDICES


def _quat_xyzw(wxyz: np.ndarray) -> np.ndarray:
    return np.array([wxyz[1], wxyz[2], wxyz[3], wxyz[0]])


class ProprioReader:
    """Precomputes addresses once per model; ``proprio(data)`` / ``cam_rel_poses(data)`` per step."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        order = robot.RobotLayout().joint_qpos_order()
        self.q28 = [(i, model.joint(n).qposadr[0], model.joint(n).dofadr[0]) for i, n in enumerate(order) if n]
        j = lambda names: (np.array([model.joint(n).qposadr[0] for n in names]),  # noqa: E731
                           np.array([model.joint(n).dofadr[0] for n in names]))
        self.base_q, self.base_d = j(robot.BASE_JOINTS)
        self.torso_q, self.torso_d = j(robot.TORSO_JOINTS)
        self.arm = {s: j(robot.ARM_JOINTS[s]) for s in ("left", "right")}
        self.fingers = {s: j(robot.FINGER_JOINTS[s]) for s in ("left", "right")}
        self.base_body = model.body(robot.BASE_BODY).id
        self.eef_site = {s: model.site(robot.EEF_SITE[s]).id for s in ("left", "right")}
        self.cams = [model.camera(robot.WRIST_CAMERA["left"]).id, model.camera(robot.WRIST_CAMERA["right"]).id,
                     model.camera(robot.HEAD_CAMERA).id]

    # -- frames ------------------------------------------------------------------------------
    def base_pose(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        return data.xpos[self.base_body].copy(), data.xmat[self.base_body].reshape(3, 3).copy()

    def _rel(self, data, pos: np.ndarray, mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bp, bR = self.base_pose(data)
        p = bR.T @ (pos - bp)
        q = np.zeros(4)
        mujoco.mju_mat2Quat(q, (bR.T @ mat).reshape(-1))
        return p, _quat_xyzw(q)

    def eef_pose(self, data: mujoco.MjData, side: str) -> tuple[np.ndarray, np.ndarray]:
        sid = self.eef_site[side]
        return self._rel(data, data.site_xpos[sid], data.site_xmat[sid].reshape(3, 3))

    def base_velocity(self, data: mujoco.MjData) -> np.ndarray:
        """(vx, vy, wz) in the robot frame."""
        yaw = data.qpos[self.base_q[2]]
        vx_w, vy_w, wz = data.qvel[self.base_d]
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * vx_w + s * vy_w, -s * vx_w + c * vy_w, wz])

    # -- vectors -----------------------------------------------------------------------------
    def proprio(self, data: mujoco.MjData) -> np.ndarray:
        p = np.zeros(schema.PROPRIO_DIM, dtype=np.float64)
        q28, v28, e28 = np.zeros(28), np.zeros(28), np.zeros(28)
        for i, qa, da in self.q28:
            q28[i], v28[i], e28[i] = data.qpos[qa], data.qvel[da], data.qfrc_actuator[da]
        p[I["joint_qpos"]] = q28
        p[I["joint_qpos_sin"]] = np.sin(q28)
        p[I["joint_qpos_cos"]] = np.cos(q28)
        p[I["joint_qvel"]] = v28
        p[I["joint_qeffort"]] = e28

        x, y, yaw = data.qpos[self.base_q]
        vel = self.base_velocity(data)
        rpy = np.array([0.0, 0.0, yaw])
        p[I["robot_pos"]] = [x, y, 0.0]
        p[I["robot_ori_cos"]] = np.cos(rpy)
        p[I["robot_ori_sin"]] = np.sin(rpy)
        p[I["robot_2d_ori"]] = yaw
        p[I["robot_2d_ori_cos"]] = np.cos(yaw)
        p[I["robot_2d_ori_sin"]] = np.sin(yaw)
        p[I["robot_lin_vel"]] = [vel[0], vel[1], 0.0]
        p[I["robot_ang_vel"]] = [0.0, 0.0, vel[2]]

        for side in ("left", "right"):
            qa, da = self.arm[side]
            qa_vals = data.qpos[qa]
            p[I[f"arm_{side}_qpos"]] = qa_vals
            p[I[f"arm_{side}_qpos_sin"]] = np.sin(qa_vals)
            p[I[f"arm_{side}_qpos_cos"]] = np.cos(qa_vals)
            p[I[f"arm_{side}_qvel"]] = data.qvel[da]
            pos, quat = self.eef_pose(data, side)
            p[I[f"eef_{side}_pos"]] = pos
            p[I[f"eef_{side}_quat"]] = quat
            fq, fd = self.fingers[side]
            p[I[f"gripper_{side}_qpos"]] = data.qpos[fq]
            p[I[f"gripper_{side}_qvel"]] = data.qvel[fd]

        p[I["trunk_qpos"]] = data.qpos[self.torso_q]
        p[I["trunk_qvel"]] = data.qvel[self.torso_d]
        p[I["base_qpos"]] = [x, y, yaw]
        p[I["base_qpos_sin"]] = np.sin([x, y, yaw])
        p[I["base_qpos_cos"]] = np.cos([x, y, yaw])
        p[I["base_qvel"]] = vel
        return p.astype(np.float32)

    def cam_rel_poses(self, data: mujoco.MjData) -> np.ndarray:
        """21-D: left wrist, right wrist, head camera; xyz + quat (xyzw) in the base frame."""
        out = []
        for cid in self.cams:
            pos, quat = self._rel(data, data.cam_xpos[cid], data.cam_xmat[cid].reshape(3, 3))
            out += [pos, quat]
        return np.concatenate(out).astype(np.float32)
