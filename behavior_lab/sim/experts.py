"""Scripted experts: skill-level plans executed with DLS IK and assisted grasping.

A task's ``expert_plan(expert)`` is a generator built from the skills below (``yield from
expert.drive_to(...)`` etc.); each ``yield`` is one 30 Hz control step. The expert reads the true
simulator state (privileged), so it is closed loop. Human-like variation comes from an injected RNG:
a per-episode speed scale, small approach offsets chosen by the plans, and a little Gaussian noise on
arm joint targets. Every skill is annotated in BEHAVIOR's schema (facts §2.6): ``{skill_idx,
skill_description, object_id, frame_duration [start, end], skill_type}``.

The actions the expert returns are exactly those sent to ``env.step`` (and recorded), except with a
``Perturbation`` (DART, Laskey et al. 2017): then ``run`` sends the expert's action plus a slowly
varying offset on the arm joint targets and base velocities, and records the expert's own action as
the label. The demonstrations then show states off the expert's path, each labelled with the
expert's correction; a policy trained on them cannot just continue from where its arm happens to be.
The offset fades out on final approaches to a contact (``precise`` moves), while the expert waits for
a hand to settle and while a gripper opens or closes, so grasps, presses and releases still happen
where the expert meant them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import mujoco
import numpy as np

from behavior_lab.data import schema
from behavior_lab.sim import robot
from behavior_lab.sim.env import CONTROL_DT, MiniBehaviorEnv
from behavior_lab.sim.ik import ArmIK

SIDES = ("left", "right")
NAVIGATION_SKILLS = {"move to"}
IDLE_STEPS_AFTER_PLAN = 5
# Gripper command for pressing a button with the fingertips: nearly closed (1 cm between the fingers),
# but clearly above the seed's "closed on nothing" threshold (g < -0.98, spec §11). A fully closed
# fist (-1) reads to the policy's gripper corrections as a failed grasp: on turning_on_radio (task 0)
# the general rule (stage < 2) and the radio rule (stage >= 2) then reopen it at every replan, and on
# make_microwave_popcorn (task 40) the general rule does before stage 4 — pressing became impossible
# with `gripper_corrections=on` however good the policy.
PRESS_GRIPPER = -0.8


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def down_grasp(yaw: float) -> np.ndarray:
    """Gripper pointing down, fingers closing along the horizontal axis at angle yaw + 90 deg."""
    return rot_z(yaw)


def forward_grasp(yaw: float) -> np.ndarray:
    """Gripper pointing horizontally along yaw, fingers closing horizontally (for vertical handles)."""
    return rot_z(yaw) @ rot_y(-np.pi / 2)


@dataclass
class ExpertStyle:
    """Per-episode human-like variation, drawn from the expert's RNG."""

    speed: float = 1.0  # multiplies hand and base speeds
    joint_noise: float = 0.002  # rad, Gaussian on arm joint targets


@dataclass(frozen=True)
class Perturbation:
    """DART-style noise on the executed action (labels stay the expert's). Off when both stds are 0."""

    arm: float = 0.0  # rad, stationary std of the offset on each arm joint target
    base: float = 0.0  # m/s (x, y) and rad/s (yaw), stationary std of the offset on base velocity
    tau: float = 10.0  # control steps, correlation time of the offset (Ornstein-Uhlenbeck process)

    def __post_init__(self):
        for name in ("arm", "base"):
            if not (getattr(self, name) >= 0.0 and np.isfinite(getattr(self, name))):
                raise ValueError(f"perturb.{name}={getattr(self, name)!r}: expected a finite std >= 0")
        if not (self.tau >= 1.0 and np.isfinite(self.tau)):
            raise ValueError(f"perturb.tau={self.tau!r}: expected a correlation time >= 1 control step")

    @property
    def active(self) -> bool:
        return self.arm > 0.0 or self.base > 0.0


class _OffsetProcess:
    """Ornstein-Uhlenbeck offsets for the arm joints and base velocity; fades while ``steady``."""

    FADE = 0.5  # per steady step: a 3 cm hand offset is under 4 mm after 3 steps

    def __init__(self, p: Perturbation, rng: np.random.Generator):
        self.p, self.rng = p, rng
        self.decay = float(np.exp(-1.0 / p.tau))
        self.arm = np.zeros(14)
        self.base = np.zeros(3)

    def apply(self, action: np.ndarray, steady: bool) -> np.ndarray:
        if steady:
            self.arm *= self.FADE
            self.base *= self.FADE
        else:
            k = np.sqrt(1.0 - self.decay ** 2)
            self.arm = self.decay * self.arm + k * self.rng.normal(0.0, self.p.arm, 14)
            self.base = self.decay * self.base + k * self.rng.normal(0.0, self.p.base, 3)
        out = action.copy()
        out[schema.ACTION_SLICES["left_arm"]] += self.arm[:7]
        out[schema.ACTION_SLICES["right_arm"]] += self.arm[7:]
        out[schema.ACTION_SLICES["base"]] += self.base
        return out.astype(np.float32)


@dataclass
class DemoResult:
    success: bool
    steps: int
    actions: np.ndarray
    annotations: dict
    info: dict
    frames: dict = field(default_factory=dict)


class Expert:
    """Runs ``env.task.expert_plan`` step by step. ``act(obs)`` returns the next 23-D action."""

    hand_speed = 0.40  # m/s
    base_speed = 0.45  # m/s
    yaw_speed = 0.8  # rad/s

    def __init__(self, env: MiniBehaviorEnv, rng: np.random.Generator | None = None):
        self.env = env
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.ik = ArmIK(env.model)
        self.plan: Iterator[None] | None = None
        self.finished = False

    # -- episode ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Call after ``env.reset``: draws this episode's style and starts the plan."""
        self.style = ExpertStyle(speed=float(self.rng.uniform(0.8, 1.2)),
                                 joint_noise=float(self.rng.uniform(0.0, 0.003)))
        self.cmd = self.env.home_action().copy()
        self.cmd[0:3] = 0.0
        self.skills: list[dict] = []
        self.plan = self.env.task.expert_plan(self)
        self.finished = False
        self.steady = False  # set by skills that need the hands where the plan put them

    def act(self, obs: dict | None = None) -> np.ndarray:
        if self.plan is None:
            self.reset()
        self.cmd[0:3] = 0.0
        try:
            next(self.plan)
        except StopIteration:
            self.finished = True
        a = self.cmd.copy()
        if not self.finished and self.style.joint_noise > 0:
            for sl in (schema.ACTION_SLICES["left_arm"], schema.ACTION_SLICES["right_arm"]):
                a[sl] += self.rng.normal(0.0, self.style.joint_noise, 7)
        return a.astype(np.float32)

    def annotations(self) -> dict:
        return {"task_name": self.env.task.name, "skill_annotation": list(self.skills),
                "primitive_annotation": [], "meta_data": {"source": "behavior_lab.sim scripted expert",
                                                          "instance": self.env.instance}}

    def run(self, instance: int, seed: int | None = None, render: bool = True,
            max_steps: int | None = None, perturb: Perturbation | None = None) -> DemoResult:
        """Reset the env on ``instance`` and roll the expert until success or timeout.

        With ``render`` the per-step observations are returned in ``frames`` (dataset keys). With an
        active ``perturb`` the env executes the expert's action plus an offset (see the module doc);
        ``actions`` and the recorded labels are the expert's own actions."""
        env = self.env
        noise = _OffsetProcess(perturb, self.rng) if perturb is not None and perturb.active else None
        obs = env.reset(instance, seed=seed, render=render)
        self.reset()
        limit = max_steps or env.max_steps
        actions, frames = [], {k: [] for k in ("state", "cam", "task_info", *schema.CAMERA_NAMES)}
        info, done, idle = env.info(), False, 0
        while not done and env.steps < limit:
            a = self.act(obs)
            if self.finished:  # the plan is over without success yet: let the world settle a moment
                idle += 1
                if idle > IDLE_STEPS_AFTER_PLAN:
                    break
            if render:
                frames["state"].append(obs[schema.PROPRIO_KEY])
                frames["cam"].append(obs[schema.CAM_REL_POSES_KEY])
                frames["task_info"].append(obs[schema.TASK_INFO_KEY])
                for name, key in zip(schema.CAMERA_NAMES, schema.OBS_RGB_KEYS):
                    frames[name].append(obs[key])
            actions.append(a)
            executed = a if noise is None or self.finished else noise.apply(a, self.steady)
            obs, done, info = env.step(executed, render=render)
        self.close_open_skill(env.steps)
        acts = np.asarray(actions, dtype=np.float32).reshape(-1, schema.ACTION_DIM)
        out = {}
        if render and actions:
            out = {schema.DATASET_STATE_KEY: np.stack(frames["state"]),
                   schema.DATASET_CAM_REL_POSES_KEY: np.stack(frames["cam"]),
                   schema.DATASET_TASK_INFO_KEY: np.stack(frames["task_info"]),
                   schema.DATASET_ACTION_KEY: acts}
            for name, key in zip(schema.CAMERA_NAMES, schema.DATASET_RGB_KEYS):
                out[key] = np.stack(frames[name])
        return DemoResult(bool(info["success"]), env.steps, acts, self.annotations(), info, out)

    # -- annotation ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def skill(self, description: str, object_id: str):
        self.close_open_skill(self.env.steps)
        entry = {"skill_idx": len(self.skills), "skill_description": description, "object_id": object_id,
                 "frame_duration": [self.env.steps, None],
                 "skill_type": "navigation" if description in NAVIGATION_SKILLS else "manipulation"}
        self.skills.append(entry)
        yield
        entry["frame_duration"][1] = self.env.steps

    def close_open_skill(self, frame: int) -> None:
        if self.skills and self.skills[-1]["frame_duration"][1] is None:
            self.skills[-1]["frame_duration"][1] = frame

    # -- world helpers ---------------------------------------------------------------------------
    def site(self, name: str) -> np.ndarray:
        return self.env.data.site_xpos[self.env.model.site(name).id].copy()

    def body(self, name: str) -> np.ndarray:
        return self.env.data.xpos[self.env.model.body(name).id].copy()

    def base_pose(self) -> np.ndarray:
        d, q = self.env.data, self.env.qadr
        return np.array([d.qpos[q(n)] for n in robot.BASE_JOINTS])

    def hand_pos(self, side: str) -> np.ndarray:
        return self.site(robot.GRASP_SITE[side])

    def to_world(self, p_base: np.ndarray) -> np.ndarray:
        x, y, yaw = self.base_pose()
        return np.array([x, y, 0.0]) + rot_z(yaw) @ np.asarray(p_base, dtype=float)

    # -- skills (generators; one yield = one control step) ---------------------------------------
    def wait(self, n: int) -> Iterator[None]:
        for _ in range(int(n)):
            yield

    @contextlib.contextmanager
    def _steady(self):
        prev, self.steady = self.steady, True
        try:
            yield
        finally:
            self.steady = prev

    def gripper(self, side: str, value: float, steps: int = 8) -> Iterator[None]:
        self.cmd[schema.LEFT_GRIPPER_DIM if side == "left" else schema.RIGHT_GRIPPER_DIM] = value
        with self._steady():
            yield from self.wait(steps)

    def drive_to(self, x: float, y: float, yaw: float, tol: float = 0.01, max_steps: int = 300) -> Iterator[None]:
        """Holonomic P-controller on the base pose (world frame target)."""
        vmax, wmax = self.base_speed * self.style.speed, self.yaw_speed * self.style.speed
        for _ in range(max_steps):
            bx, by, byaw = self.base_pose()
            err_w = np.array([x - bx, y - by])
            eyaw = (yaw - byaw + np.pi) % (2 * np.pi) - np.pi
            if np.linalg.norm(err_w) < tol and abs(eyaw) < 0.02:
                break
            c, s = np.cos(byaw), np.sin(byaw)
            err_r = np.array([c * err_w[0] + s * err_w[1], -s * err_w[0] + c * err_w[1]])
            dist = np.linalg.norm(err_r)
            speed = min(vmax, 2.5 * dist + 0.03)
            v = err_r / max(dist, 1e-9) * min(speed, dist / CONTROL_DT)
            w = np.clip(3.0 * eyaw, -wmax, wmax)
            self.cmd[0:3] = [v[0], v[1], w]
            yield
        self.cmd[0:3] = 0.0

    def drive_around(self, x: float, y: float, yaw: float, tol: float = 0.01) -> Iterator[None]:
        """Back off (if the goal is further back), side-step, then approach: an L-shaped path that
        does not sweep the arms through furniture standing in front of the robot."""
        bx, by, _ = self.base_pose()
        if x < bx - 0.03:
            yield from self.drive_to(x, by, yaw, tol=0.04)
            bx = x
        if abs(y - by) > 0.03:
            yield from self.drive_to(bx, y, yaw, tol=0.04)
        yield from self.drive_to(x, y, yaw, tol=tol)

    def _arm_slice(self, side: str) -> slice:
        return schema.ACTION_SLICES["left_arm" if side == "left" else "right_arm"]

    def move_hands(self, targets: dict[str, tuple[np.ndarray, np.ndarray | None]], speed: float | None = None,
                   tol: float = 0.012, settle_max: int = 25, precise: bool = False) -> Iterator[None]:
        """Move one or both grasp sites along straight lines to world poses, IK every step.

        ``precise``: the final approach to a contact (grasp, handle, button). The plans aim these at
        object poses read when the skill starts, so a perturbation (``Perturbation``) fades during
        them: a hand pushed into the object would move it away from where the plan aims."""
        v = (speed or self.hand_speed) * self.style.speed
        starts = {s: self._commanded_hand(s) for s in targets}
        dist = max(np.linalg.norm(targets[s][0] - starts[s]) for s in targets)
        n = max(1, int(np.ceil(dist / (v * CONTROL_DT))))
        with self._steady() if precise else contextlib.nullcontext():
            for i in range(1, n + 1):
                t = i / n
                t = t * t * (3 - 2 * t)  # smoothstep: accelerate and decelerate like a person
                for s, (p, R) in targets.items():
                    self._ik_to(s, starts[s] + t * (p - starts[s]), R)
                yield
        with self._steady():
            for _ in range(settle_max):
                if all(np.linalg.norm(self.hand_pos(s) - targets[s][0]) < tol for s in targets):
                    break
                for s, (p, R) in targets.items():
                    self._ik_to(s, p, R)
                yield

    def move_hand(self, side: str, pos: np.ndarray, rot: np.ndarray | None, speed: float | None = None,
                  tol: float = 0.012, settle_max: int = 25, precise: bool = False) -> Iterator[None]:
        yield from self.move_hands({side: (np.asarray(pos, dtype=float), rot)}, speed, tol, settle_max, precise)

    def _commanded_hand(self, side: str) -> np.ndarray:
        """Grasp-site position the current arm command would reach (forward kinematics)."""
        d = self.ik.scratch
        d.qpos[:] = self.env.data.qpos
        d.qpos[self.ik.qadr[side]] = self.cmd[self._arm_slice(side)]
        mujoco.mj_kinematics(self.env.model, d)
        return d.site_xpos[self.ik.site[side]].copy()

    def _ik_to(self, side: str, pos: np.ndarray, rot: np.ndarray | None) -> None:
        q, _ = self.ik.solve(self.env.data.qpos, side, self.cmd[self._arm_slice(side)], pos, rot)
        self.cmd[self._arm_slice(side)] = q

    def joint(self, name: str) -> float:
        return float(self.env.data.qpos[self.env.qadr(name)])

    def base_track(self, x: float, y: float, yaw: float, gain: float = 4.0) -> None:
        """Set this step's base velocity towards a (moving) world pose; no yield."""
        bx, by, byaw = self.base_pose()
        c, s = np.cos(byaw), np.sin(byaw)
        ex, ey = x - bx, y - by
        v = gain * np.array([c * ex + s * ey, -s * ex + c * ey])
        w = gain * ((yaw - byaw + np.pi) % (2 * np.pi) - np.pi)
        self.cmd[0:3] = np.clip([v[0], v[1], w], -robot.BASE_VEL_LIMIT, robot.BASE_VEL_LIMIT)

    def _pinned_point(self, side: str, door_body: str, q_joint: str, q: float) -> np.ndarray:
        """World position, with the door joint at q, of the door point the hand is pinned to."""
        env = self.env
        e = env.grasp.weld[(side, door_body)]
        d = self.ik.scratch
        d.qpos[:] = env.data.qpos
        d.qpos[env.qadr(q_joint)] = q
        mujoco.mj_kinematics(env.model, d)
        bid = env.model.body(door_body).id
        return d.xpos[bid] + d.xmat[bid].reshape(3, 3) @ env.model.eq_data[e, 3:6]

    def move_door(self, side: str, door: str, q_target: float, rot, speed: float = 0.25,
                  follow_base: bool = False, tol: float = 0.02) -> Iterator[None]:
        """With the handle grasped (pinned), drive the door joint to ``q_target`` by moving the hand
        along the handle's path; optionally move the base along so the handle keeps its base-frame x, y.
        ``rot`` is the hand orientation, or a function of the door joint value returning it (so the
        hand can turn with a hinged door and keep its palm clear of the door face)."""
        rot_at = rot if callable(rot) else (lambda q: rot)
        body, jname = f"{door}_door", f"{door}_door_joint"
        if self.env.grasp.held[side] != body:
            return
        q0 = self.joint(jname)
        p0, p1 = self._pinned_point(side, body, jname, q0), self._pinned_point(side, body, jname, q_target)
        mid = self._pinned_point(side, body, jname, 0.5 * (q0 + q_target))
        length = np.linalg.norm(mid - p0) + np.linalg.norm(p1 - mid)
        n = max(2, int(np.ceil(length / (speed * self.style.speed * CONTROL_DT))))
        base0 = self.base_pose()
        for i in range(1, n + 1):
            t = i / n
            t = t * t * (3 - 2 * t)
            q = q0 + (q_target - q0) * t
            p = self._pinned_point(side, body, jname, q)
            if follow_base:
                self.base_track(base0[0] + (p[0] - p0[0]), base0[1] + (p[1] - p0[1]), base0[2])
            self._ik_to(side, p, rot_at(q))
            yield
        for _ in range(20):
            if abs(self.joint(jname) - q_target) < tol:
                break
            self._ik_to(side, p1, rot_at(q_target))
            yield

    def home_arm(self, side: str, steps: int = 20) -> Iterator[None]:
        """Interpolate one arm's joint targets back to its home pose."""
        sl = self._arm_slice(side)
        start = self.cmd[sl].copy()
        for i in range(1, steps + 1):
            self.cmd[sl] = start + (robot.ARM_HOME[side] - start) * (i / steps)
            yield


def make_expert(env: MiniBehaviorEnv, rng: np.random.Generator | int | None = None) -> Expert:
    """The scripted expert for ``env``'s task (interfaces.md "Simulator")."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return Expert(env, rng)
