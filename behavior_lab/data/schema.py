"""The BEHAVIOR-1K 2025 interface constants every part of behavior_lab agrees on.

Observation keys, the 23-D R1Pro action layout, the 256-D proprio index map, the 50 task ids and
the seed's stage table. Sources are cited per constant: `behavior-challenge-facts.md` (facts) and
`seed-solution-spec.md` (spec) in ../shared/docs.
"""

from __future__ import annotations

import difflib
import math

import numpy as np

# --- observation keys (facts §4 "Observation dict sent to the policy"; DESIGN §5) ----------------
PROPRIO_KEY = "robot_r1::proprio"
HEAD_RGB_KEY = "robot_r1::robot_r1:zed_link:Camera:0::rgb"
LEFT_WRIST_RGB_KEY = "robot_r1::robot_r1:left_realsense_link:Camera:0::rgb"
RIGHT_WRIST_RGB_KEY = "robot_r1::robot_r1:right_realsense_link:Camera:0::rgb"
CAM_REL_POSES_KEY = "robot_r1::cam_rel_poses"
TASK_ID_KEY = "task_id"
# Privileged task information (facts §2.2 `observation.task_info`, privileged track only; DESIGN §8
# lever 5). BEHAVIOR's width varies per task; the embedded suite fixes it: 8 points as xyz in the
# robot base frame: up to 6 task-relevant points (objects, handles, buttons; zero-padded) in slots
# 0..5, then the left and right hands' grasp points in the last two slots (TASK_INFO_HAND_SLOTS).
TASK_INFO_KEY = "task_info"
TASK_INFO_POINTS = 8
TASK_INFO_DIM = 3 * TASK_INFO_POINTS
TASK_INFO_HAND_SLOTS = {"left": 6, "right": 7}
TASK_INFO_TASK_POINTS = min(TASK_INFO_HAND_SLOTS.values())  # slots for the task's own points
# Embedded suite only: the step info and the per-episode metrics JSON carry reach and grasp
# diagnostics under this key (behavior_lab.sim.diagnostics); OmniGibson's have no such key.
DIAGNOSTICS_KEY = "diagnostics"
STEP_DIAGNOSTICS_KEY = "diagnostics_now"  # embedded env info: this step's reach figures (sim/diagnostics.py)
# Camera order used by the model: head, left wrist, right wrist (spec §1.2).
OBS_RGB_KEYS = (HEAD_RGB_KEY, LEFT_WRIST_RGB_KEY, RIGHT_WRIST_RGB_KEY)
CAMERA_NAMES = ("head", "left_wrist", "right_wrist")

# --- dataset feature keys (facts §2.2) -----------------------------------------------------------
DATASET_RGB_KEYS = tuple(f"observation.images.rgb.{c}" for c in CAMERA_NAMES)
DATASET_DEPTH_KEYS = tuple(f"observation.images.depth.{c}" for c in CAMERA_NAMES)
DATASET_SEG_KEYS = tuple(f"observation.images.seg_instance_id.{c}" for c in CAMERA_NAMES)
DATASET_STATE_KEY = "observation.state"
DATASET_CAM_REL_POSES_KEY = "observation.cam_rel_poses"
DATASET_ACTION_KEY = "action"
DATASET_TASK_INFO_KEY = "observation.task_info"  # optional column (facts §2.2)
REAL_RESOLUTION = {"head": 720, "left_wrist": 480, "right_wrist": 480}  # facts §2.2

PROPRIO_DIM = 256  # facts §2.4
CAM_REL_POSES_DIM = 21  # facts §2.2: 3 cameras x (xyz + quat)
ACTION_DIM = 23  # facts §2.3
STATE_DIM = 23  # spec §1.2: the 23-D state mirrors the action layout
PADDED_DIM = 32  # spec §1.3: D = 32
ACTION_HORIZON = 30  # spec §1.3: H = 30 steps at 30 Hz
CONTROL_HZ = 30  # facts §4

# --- 23-D action layout (facts §2.3; spec §1.3) --------------------------------------------------
ACTION_SLICES = {
    "base": slice(0, 3),
    "torso": slice(3, 7),
    "left_arm": slice(7, 14),
    "left_gripper": slice(14, 15),
    "right_arm": slice(15, 22),
    "right_gripper": slice(22, 23),
}
BASE_VEL_DIMS = (0, 1, 2)
LEFT_GRIPPER_DIM = 14
RIGHT_GRIPPER_DIM = 22
# Names used for per-dimension loss metrics (spec §14).
ACTION_DIM_NAMES = (
    ["base_vel_x", "base_vel_y", "base_vel_z"]
    + [f"trunk_{i}" for i in range(4)]
    + [f"left_arm_{i}" for i in range(7)]
    + ["left_gripper"]
    + [f"right_arm_{i}" for i in range(7)]
    + ["right_gripper"]
)

# Delta mask of the seed: make_bool_mask(-3, 3, -1, 7, -1, 7, -1) (spec §8.1).
# True = delta relative to the chunk-start state; False = absolute.
DELTA_ACTION_MASK = np.array(
    [False] * 3 + [True] * 3 + [False] + [True] * 7 + [False] + [True] * 7 + [False], dtype=bool
)
assert DELTA_ACTION_MASK.shape == (ACTION_DIM,)

# --- 256-D proprio index map (facts §2.4, PROPRIOCEPTION_INDICES["R1Pro"]) ------------------------
PROPRIO_INDICES = {
    "joint_qpos": slice(0, 28),
    "joint_qpos_sin": slice(28, 56),
    "joint_qpos_cos": slice(56, 84),
    "joint_qvel": slice(84, 112),
    "joint_qeffort": slice(112, 140),
    "robot_pos": slice(140, 143),
    "robot_ori_cos": slice(143, 146),
    "robot_ori_sin": slice(146, 149),
    "robot_2d_ori": slice(149, 150),
    "robot_2d_ori_cos": slice(150, 151),
    "robot_2d_ori_sin": slice(151, 152),
    "robot_lin_vel": slice(152, 155),
    "robot_ang_vel": slice(155, 158),
    "arm_left_qpos": slice(158, 165),
    "arm_left_qpos_sin": slice(165, 172),
    "arm_left_qpos_cos": slice(172, 179),
    "arm_left_qvel": slice(179, 186),
    "eef_left_pos": slice(186, 189),
    "eef_left_quat": slice(189, 193),
    "gripper_left_qpos": slice(193, 195),
    "gripper_left_qvel": slice(195, 197),
    "arm_right_qpos": slice(197, 204),
    "arm_right_qpos_sin": slice(204, 211),
    "arm_right_qpos_cos": slice(211, 218),
    "arm_right_qvel": slice(218, 225),
    "eef_right_pos": slice(225, 228),
    "eef_right_quat": slice(228, 232),
    "gripper_right_qpos": slice(232, 234),
    "gripper_right_qvel": slice(234, 236),
    "trunk_qpos": slice(236, 240),
    "trunk_qvel": slice(240, 244),
    "base_qpos": slice(244, 247),
    "base_qpos_sin": slice(247, 250),
    "base_qpos_cos": slice(250, 253),
    "base_qvel": slice(253, 256),
}
GRIPPER_MAX_WIDTH = 0.1  # spec §1.2: width = sum of finger qpos, mapped from [0, 0.1] m to [-1, 1]


def gripper_width_to_unit(width: np.ndarray) -> np.ndarray:
    """Finger-width sum in metres -> [-1 closed, 1 open] (spec §1.2: 2·(w/0.1) − 1)."""
    return 2.0 * (np.asarray(width) / GRIPPER_MAX_WIDTH) - 1.0


def extract_state_from_proprio(proprio: np.ndarray) -> np.ndarray:
    """The seed's 23-D state from the 256-D proprio vector (spec §1.2, facts §2.4).

    Works on (..., 256) arrays; returns (..., 23) float32 in the action layout:
    base_qvel(3), trunk_qpos(4), arm_left_qpos(7), left gripper(1), arm_right_qpos(7), right gripper(1).
    """
    p = np.asarray(proprio)
    if p.shape[-1] != PROPRIO_DIM:
        raise ValueError(
            f"proprio vector has {p.shape[-1]} entries in its last axis; expected {PROPRIO_DIM} "
            "(BEHAVIOR R1Pro layout, facts §2.4)"
        )
    I = PROPRIO_INDICES
    left_w = p[..., I["gripper_left_qpos"]].sum(-1, keepdims=True)
    right_w = p[..., I["gripper_right_qpos"]].sum(-1, keepdims=True)
    state = np.concatenate(
        [
            p[..., I["base_qvel"]],
            p[..., I["trunk_qpos"]],
            p[..., I["arm_left_qpos"]],
            gripper_width_to_unit(left_w),
            p[..., I["arm_right_qpos"]],
            gripper_width_to_unit(right_w),
        ],
        axis=-1,
    )
    return state.astype(np.float32)


# --- the 50 tasks (facts §1; spec §2 TASK_NAMES_TO_INDICES) --------------------------------------
TASK_NAMES = (
    "turning_on_radio", "picking_up_trash", "putting_away_Halloween_decorations",
    "cleaning_up_plates_and_food", "can_meat", "setting_mousetraps", "hiding_Easter_eggs",
    "picking_up_toys", "rearranging_kitchen_furniture", "putting_up_Christmas_decorations_inside",
    "set_up_a_coffee_station_in_your_kitchen", "putting_dishes_away_after_cleaning",
    "preparing_lunch_box", "loading_the_car", "carrying_in_groceries", "bringing_in_wood",
    "moving_boxes_to_storage", "bringing_water", "tidying_bedroom", "outfit_a_basic_toolbox",
    "sorting_vegetables", "collecting_childrens_toys", "putting_shoes_on_rack",
    "boxing_books_up_for_storage", "storing_food", "clearing_food_from_table_into_fridge",
    "assembling_gift_baskets", "sorting_household_items", "getting_organized_for_work",
    "clean_up_your_desk", "setting_the_fire", "clean_boxing_gloves", "wash_a_baseball_cap",
    "wash_dog_toys", "hanging_pictures", "attach_a_camera_to_a_tripod", "clean_a_patio",
    "clean_a_trumpet", "spraying_for_bugs", "spraying_fruit_trees", "make_microwave_popcorn",
    "cook_cabbage", "chop_an_onion", "slicing_vegetables", "chopping_wood", "cook_hot_dogs",
    "cook_bacon", "freeze_pies", "canning_food", "make_pizza",
)
assert len(TASK_NAMES) == 50
TASK_NAMES_TO_INDICES = {name: i for i, name in enumerate(TASK_NAMES)}
NUM_TASKS = 50  # spec §2: nnx.Embed(50, 2048)

# Seed's hard-coded TASK_NUM_STAGES (spec §6.1); sum 596, MAX_NUM_STAGES 15.
SEED_TASK_NUM_STAGES = (
    5, 6, 15, 15, 14, 12, 9, 15, 10, 15,
    7, 13, 10, 15, 15, 15, 15, 11, 13, 12,
    14, 15, 9, 15, 15, 15, 15, 15, 15, 15,
    11, 10, 10, 13, 5, 5, 14, 6, 8, 10,
    5, 15, 8, 15, 12, 11, 9, 14, 15, 15,
)
assert sum(SEED_TASK_NUM_STAGES) == 596
MAX_NUM_STAGES = 15  # spec §6.1
STAGE_FRAMES = 900  # spec §6.1: ~30 s per stage
MIN_STAGES, MAX_STAGES = 5, 15  # spec §6.1 clipping


def num_stages_from_mean_length(mean_length_frames: float) -> int:
    """clip(ceil(mean_frames / 900), 5, 15): the rule behind the seed table (spec §6.1, issue 4)."""
    return int(min(MAX_STAGES, max(MIN_STAGES, math.ceil(mean_length_frames / STAGE_FRAMES))))


def task_id(name_or_id: str | int) -> int:
    """Resolve a task name or id to its BEHAVIOR id; unknown names list the valid ones."""
    if isinstance(name_or_id, (int, np.integer)):
        if not 0 <= int(name_or_id) < NUM_TASKS:
            raise KeyError(f"task id {name_or_id} out of range; BEHAVIOR task ids are 0..{NUM_TASKS - 1}")
        return int(name_or_id)
    s = str(name_or_id)
    if s.isdigit():
        return task_id(int(s))
    if s in TASK_NAMES_TO_INDICES:
        return TASK_NAMES_TO_INDICES[s]
    near = difflib.get_close_matches(s, TASK_NAMES, n=3)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise KeyError(f"unknown task {s!r}.{hint} Valid tasks: {', '.join(TASK_NAMES)}")


def task_name(tid: int) -> str:
    return TASK_NAMES[task_id(tid)]
