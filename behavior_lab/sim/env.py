"""MiniBehaviorEnv: one mini-BEHAVIOR task in MuJoCo behind BEHAVIOR's observation/action interface.

Interface (docs/interfaces.md "Simulator"): ``reset(instance, seed=None) -> obs``,
``step(action (23,), render=True) -> (obs | None, done, info)``, ``instances(split, n)``.
Observations carry the BEHAVIOR keys (schema.*_KEY): three RGB images (H x W x 3 uint8), the 256-D
proprio, the 21-D camera poses and ``task_id`` (int64, shape (1,)).

Control: one env step = 17 physics steps of 2 ms (~29.4 Hz, sim-measurements.md). Base velocity
commands (robot frame) are integrated into the targets of the base position servos; torso/arm
entries are absolute joint targets; gripper entries map [-1, 1] to finger width [0, 0.1] m.
"""

from __future__ import annotations

import mujoco
import numpy as np

from behavior_lab.data import schema
from behavior_lab.sim import predicates as preds
from behavior_lab.sim import robot, scene
from behavior_lab.sim.diagnostics import DIAGNOSTICS_KEY, ManipulationDiagnostics
from behavior_lab.sim.grasp import AssistedGrasp, weld_xml
from behavior_lab.sim.proprio import ProprioReader
from behavior_lab.sim.tasks.base import Layout, TaskDef

N_SUBSTEPS = 17
TIMESTEP = 0.002
CONTROL_DT = N_SUBSTEPS * TIMESTEP
BASE_TARGET_LEAD = np.array([0.25, 0.25, 0.5])  # max servo-target lead over the actual base pose (m, m, rad)
SETTLE_STEPS = 8  # control steps run at reset (not counted) so objects come to rest
MAX_IMAGE_SIZE = 224
SPLIT_OFFSETS = {"train": 0, "public": 1_000_000, "heldout": 2_000_000}
SPLIT_SIZE = 1_000_000


def split_of(instance: int) -> str:
    for name, off in SPLIT_OFFSETS.items():
        if off <= instance < off + SPLIT_SIZE:
            return name
    raise ValueError(f"instance {instance} is outside every split range {SPLIT_OFFSETS} (+{SPLIT_SIZE})")


class MiniBehaviorEnv:
    """A task environment. ``image_size`` is the camera resolution (default 64, at most 224)."""

    def __init__(self, task: TaskDef, image_size: int = 64, max_steps: int | None = None):
        if not 16 <= int(image_size) <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size={image_size}: expected 16..{MAX_IMAGE_SIZE} px")
        self.task = task
        self.image_size = int(image_size)
        self.max_steps = int(max_steps) if max_steps else task.max_steps
        pieces = task.pieces()
        pieces.append(scene.Piece(body="", equality=weld_xml(task.grasps)))
        self.xml = scene.build_mjcf(task.name, pieces, offscreen_px=MAX_IMAGE_SIZE)
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        self.grasp = AssistedGrasp(self.model, task.grasps)
        self.diagnostics = ManipulationDiagnostics(self.model, task, self.grasp)
        self.reader = ProprioReader(self.model)
        self._renderer: mujoco.Renderer | None = None
        m = self.model
        act = lambda n: m.actuator(f"act_{n}").id  # noqa: E731
        self.act_base = np.array([act(n) for n in robot.BASE_JOINTS])
        self.base_qadr = np.array([m.joint(n).qposadr[0] for n in robot.BASE_JOINTS])
        self.act_torso = np.array([act(n) for n in robot.TORSO_JOINTS])
        self.act_arm = {s: np.array([act(n) for n in robot.ARM_JOINTS[s]]) for s in ("left", "right")}
        self.act_fingers = {s: np.array([act(n) for n in robot.FINGER_JOINTS[s]]) for s in ("left", "right")}
        self.qadr = lambda n: m.joint(n).qposadr[0]  # noqa: E731
        self.torso_lo = np.array([r[0] for r in robot.TORSO_RANGE])
        self.torso_hi = np.array([r[1] for r in robot.TORSO_RANGE])
        self.arm_lo = np.array([r[0] for r in robot.ARM_RANGE])
        self.arm_hi = np.array([r[1] for r in robot.ARM_RANGE])
        self.toggle_adr = {b: (self.qadr(t.joint), t) for b, t in task.toggles.items()}
        self.door_adr = {b: (self.qadr(dsp.joint), dsp) for b, dsp in task.doors.items()}
        self.info_points = self._resolve_info_points(task)
        self.region = {m.site(i).name: i for i in range(m.nsite) if m.site(i).name.endswith(("_top", "_inside"))}
        self.instance: int | None = None
        self.layout: Layout | None = None
        self.steps = 0
        self.base_target = np.zeros(3)
        self.last_action = np.zeros(schema.ACTION_DIM)
        self.toggled: dict[str, bool] = {}
        self.start_values: dict[str, bool] = {}
        self.agent_distance = {"base": 0.0, "left": 0.0, "right": 0.0}

    # -- world view for predicates -------------------------------------------------------------
    def body_pos(self, body: str) -> np.ndarray:
        return self.data.xpos[self.model.body(body).id]

    def site_pos(self, site: str) -> np.ndarray:
        return self.data.site_xpos[self.model.site(site).id].copy()

    def in_region(self, point: np.ndarray, site: str) -> bool:
        sid = self.region[site]
        local = self.data.site_xmat[sid].reshape(3, 3).T @ (point - self.data.site_xpos[sid])
        return bool(np.all(np.abs(local) <= self.model.site_size[sid]))

    def is_grasped(self, body: str) -> bool:
        return self.grasp.is_grasped(body)

    def is_open(self, articulated: str) -> bool:
        adr, spec = self.door_adr[articulated]
        return abs(self.data.qpos[adr]) > spec.open_threshold

    def is_toggled_on(self, body: str) -> bool:
        return self.toggled[body]

    # -- episode API ---------------------------------------------------------------------------
    @classmethod
    def instances(cls, split: str, n: int) -> list[int]:
        """``n`` instance ids of a split; the splits' id (= layout seed) ranges are disjoint."""
        if split not in SPLIT_OFFSETS:
            raise KeyError(f"unknown split {split!r}; expected one of {list(SPLIT_OFFSETS)}")
        if not 0 <= n <= SPLIT_SIZE:
            raise ValueError(f"n={n} instances requested; a split holds at most {SPLIT_SIZE}")
        return list(range(SPLIT_OFFSETS[split], SPLIT_OFFSETS[split] + n))

    def sample_layout(self, instance: int, seed: int | None = None) -> Layout:
        split_of(instance)
        rng = np.random.default_rng([self.task.task_id, int(instance)])
        layout = self.task.sample_layout(rng)
        if seed is not None:  # rollout-level variation: jitter only the robot start pose
            j = np.random.default_rng([self.task.task_id, int(instance), int(seed) + 1])
            r = layout.robot
            layout.robot = type(r)(r.x + j.uniform(-0.02, 0.02), r.y + j.uniform(-0.02, 0.02),
                                   r.yaw + j.uniform(-0.03, 0.03))
        return layout

    def reset(self, instance: int, seed: int | None = None, render: bool = True) -> dict:
        """Set up instance ``instance`` and return the first observation (no images if not render)."""
        m, d = self.model, self.data
        self.instance = int(instance)
        self.layout = layout = self.sample_layout(instance, seed)
        mujoco.mj_resetData(m, d)
        self.grasp.reset(d)
        for body, (x, y, z, yaw) in layout.static.items():
            bid = m.body(body).id
            m.body_pos[bid] = [x, y, z]
            m.body_quat[bid] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        for body, (x, y, z, yaw) in layout.free.items():
            adr = self.qadr(f"{body}_joint")
            d.qpos[adr:adr + 7] = [x, y, z, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        rp = layout.robot
        self.base_target = np.array([rp.x, rp.y, rp.yaw])
        for n, v in zip(robot.BASE_JOINTS, self.base_target):
            d.qpos[self.qadr(n)] = v
        for n, v in zip(robot.TORSO_JOINTS, self.task.torso):
            d.qpos[self.qadr(n)] = v
        for s in ("left", "right"):
            for n, v in zip(robot.ARM_JOINTS[s], robot.ARM_HOME[s]):
                d.qpos[self.qadr(n)] = v
            for n in robot.FINGER_JOINTS[s]:
                d.qpos[self.qadr(n)] = robot.FINGER_MAX
        self.last_action = self.home_action()
        self._apply_controls(self.last_action, integrate_base=False)
        mujoco.mj_forward(m, d)
        for _ in range(SETTLE_STEPS):
            mujoco.mj_step(m, d, nstep=N_SUBSTEPS)
        self.toggled = {b: False for b in self.task.toggles}
        self.steps = 0
        self.agent_distance = {"base": 0.0, "left": 0.0, "right": 0.0}
        self._prev_points = self._tracked_points()
        self.diagnostics.reset(d)
        self.start_values = preds.evaluate(self.task.goal_options, self)
        return self.observe(render)

    def home_action(self) -> np.ndarray:
        """The 23-D action that holds the reset pose (zero base velocity, home joints, open grippers)."""
        a = np.zeros(schema.ACTION_DIM)
        a[schema.ACTION_SLICES["torso"]] = self.task.torso
        a[schema.ACTION_SLICES["left_arm"]] = robot.ARM_HOME["left"]
        a[schema.ACTION_SLICES["right_arm"]] = robot.ARM_HOME["right"]
        a[schema.LEFT_GRIPPER_DIM] = a[schema.RIGHT_GRIPPER_DIM] = 1.0
        return a

    def _apply_controls(self, a: np.ndarray, integrate_base: bool = True) -> None:
        d = self.data
        if integrate_base:
            v = np.clip(a[0:3], -robot.BASE_VEL_LIMIT, robot.BASE_VEL_LIMIT)
            yaw = self.base_target[2]
            c, s = np.cos(yaw), np.sin(yaw)
            self.base_target += CONTROL_DT * np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])
            # a base pushed against furniture must not wind up its target and lurch when freed
            actual = d.qpos[self.base_qadr]
            self.base_target = actual + np.clip(self.base_target - actual, -BASE_TARGET_LEAD, BASE_TARGET_LEAD)
        d.ctrl[self.act_base] = self.base_target
        d.ctrl[self.act_torso] = np.clip(a[schema.ACTION_SLICES["torso"]], self.torso_lo, self.torso_hi)
        for side, arm, g in (("left", "left_arm", schema.LEFT_GRIPPER_DIM),
                             ("right", "right_arm", schema.RIGHT_GRIPPER_DIM)):
            d.ctrl[self.act_arm[side]] = np.clip(a[schema.ACTION_SLICES[arm]], self.arm_lo, self.arm_hi)
            width = (np.clip(a[g], -1.0, 1.0) + 1.0) / 2.0 * schema.GRIPPER_MAX_WIDTH
            held = self.grasp.held[side]
            if held is not None and self.grasp.grasps[held].hold_width is not None:
                width = max(width, self.grasp.grasps[held].hold_width)  # the held object stops the fingers
            d.ctrl[self.act_fingers[side]] = width / 2.0

    def _tracked_points(self) -> dict[str, np.ndarray]:
        d = self.data
        return {"base": d.xpos[self.reader.base_body].copy(),
                "left": d.site_xpos[self.reader.eef_site["left"]].copy(),
                "right": d.site_xpos[self.reader.eef_site["right"]].copy()}

    def step(self, action: np.ndarray, render: bool = True) -> tuple[dict | None, bool, dict]:
        if self.instance is None:
            raise RuntimeError("call reset(instance) before step()")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (schema.ACTION_DIM,):
            raise ValueError(f"action has shape {a.shape}; expected ({schema.ACTION_DIM},) in the R1Pro layout")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains non-finite values: {a}")
        self.last_action = a.copy()
        self._apply_controls(a)
        self.grasp.update(self.data, {"left": a[schema.LEFT_GRIPPER_DIM], "right": a[schema.RIGHT_GRIPPER_DIM]})
        if self.toggle_adr:  # latch buttons on every substep, so a quick tap counts too
            for _ in range(N_SUBSTEPS):
                mujoco.mj_step(self.model, self.data)
                for body, (adr, spec) in self.toggle_adr.items():
                    if spec.sign * self.data.qpos[adr] > spec.threshold:
                        self.toggled[body] = True
        else:
            mujoco.mj_step(self.model, self.data, nstep=N_SUBSTEPS)
        self.steps += 1
        points = self._tracked_points()
        for k, p in points.items():
            self.agent_distance[k] += float(np.linalg.norm(p - self._prev_points[k]))
        self._prev_points = points
        self.diagnostics.update(self.data)
        info = self.info()
        done = info["success"] or self.steps >= self.max_steps
        return (self.observe() if render else None), bool(done), info

    def info(self) -> dict:
        values = preds.evaluate(self.task.goal_options, self)
        return {
            "success": preds.is_success(self.task.goal_options, values),
            "q_score": preds.q_score(self.task.goal_options, self.start_values, values),
            "predicates": values,
            "steps": self.steps,
            "agent_distance": dict(self.agent_distance),
            DIAGNOSTICS_KEY: self.diagnostics.summary(),
            schema.STEP_DIAGNOSTICS_KEY: self.diagnostics.now(),
        }

    # -- observations ---------------------------------------------------------------------------
    def proprio(self) -> np.ndarray:
        return self.reader.proprio(self.data)

    def render_images(self) -> list[np.ndarray]:
        """RGB (H, W, 3) uint8 from head, left wrist, right wrist (schema.OBS_RGB_KEYS order)."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
        r = self._renderer
        images = []
        for cam in robot.CAMERA_ORDER:
            r.update_scene(self.data, camera=cam)
            r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            r.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
            images.append(r.render().copy())
        return images

    def _resolve_info_points(self, task: TaskDef) -> list[tuple[str, int]]:
        """(kind, id) per name of ``task.info_points``: a site if one has the name, else a body."""
        if len(task.info_points) > schema.TASK_INFO_TASK_POINTS:
            raise ValueError(f"task {task.name}: {len(task.info_points)} info_points; at most "
                             f"{schema.TASK_INFO_TASK_POINTS} fit schema.TASK_INFO_DIM beside the two hands")
        out = []
        for name in task.info_points:
            site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, name)
            body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)
            if site < 0 and body < 0:
                raise KeyError(f"task {task.name}: info point {name!r} is neither a site nor a body of its scene")
            out.append(("site", site) if site >= 0 else ("body", body))
        return out

    def task_info(self) -> np.ndarray:
        """Privileged observation (schema.TASK_INFO_KEY, DESIGN §8 lever 5): the task's info points
        in the robot base frame (x forward, y left, z up from the base origin), zero-padded, then
        the two hands' grasp points in slots schema.TASK_INFO_HAND_SLOTS; schema.TASK_INFO_DIM float32.

        The hands are there so that "how far is the hand from the can" is a difference of two
        inputs; from the 23-D joint state alone the model has to learn the arm's forward kinematics
        (on picking_up_trash alone they made no measurable difference at 4,000 steps, docs/status.md)."""
        d = self.data
        world = np.zeros((schema.TASK_INFO_POINTS, 3))
        for i, (kind, idx) in enumerate(self.info_points):
            world[i] = d.site_xpos[idx] if kind == "site" else d.xpos[idx]
        for side, slot in schema.TASK_INFO_HAND_SLOTS.items():
            world[slot] = d.site_xpos[self.reader.eef_site[side]]
        x, y, yaw = (d.qpos[a] for a in self.base_qadr)
        c, s = np.cos(yaw), np.sin(yaw)
        dx, dy = world[:, 0] - x, world[:, 1] - y
        out = np.stack([c * dx + s * dy, -s * dx + c * dy, world[:, 2]], axis=1).astype(np.float32)
        out[len(self.info_points):schema.TASK_INFO_TASK_POINTS] = 0.0  # padding
        return out.reshape(-1)

    def observe(self, render: bool = True) -> dict:
        obs = {
            schema.PROPRIO_KEY: self.proprio(),
            schema.CAM_REL_POSES_KEY: self.reader.cam_rel_poses(self.data),
            schema.TASK_ID_KEY: np.array([self.task.task_id], dtype=np.int64),
            schema.TASK_INFO_KEY: self.task_info(),
        }
        if render:
            for key, image in zip(schema.OBS_RGB_KEYS, self.render_images()):
                obs[key] = image
        return obs

    def get_state(self) -> np.ndarray:
        """Full integration state (mj_getState) for determinism checks."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        out = np.zeros(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, out, spec)
        return out

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __del__(self):  # osmesa prints a traceback when a Renderer is left to interpreter exit
        try:
            self.close()
        except Exception:
            pass
