"""The BEHAVIOR LeRobot v2.1 on-disk layout: path templates, meta file names, feature specs.

One place that knows where things live in a dataset directory, shared by the reader, the writer,
the stats pass and the frame cache (DESIGN §5; facts §2.2, written by the official generator
`OmniGibson/omnigibson/learning/utils/lerobot_utils.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from behavior_lab.data import schema

CODEBASE_VERSION = "v2.1"  # facts §2.1: the 2025 demos are LeRobot v2.1 (the 2026 demos are v3.0)
ROBOT_TYPE = "R1Pro"
CHUNKS_SIZE = 10000  # facts §2.2: chunk = task, episode_index = task*10000 + k
EPISODES_PER_TASK_STRIDE = 10000  # facts §2.5: task = episode_index // 10000

DATA_PATH = "data/task-{episode_chunk:04d}/episode_{episode_index:08d}.parquet"
VIDEO_PATH = "videos/task-{episode_chunk:04d}/{video_key}/episode_{episode_index:08d}.mp4"
ANNOTATION_PATH = "annotations/task-{episode_chunk:04d}/episode_{episode_index:08d}.json"

INFO_FILE = "meta/info.json"
EPISODES_FILE = "meta/episodes.jsonl"
TASKS_FILE = "meta/tasks.jsonl"
EPISODES_STATS_FILE = "meta/episodes_stats.jsonl"
NORM_STATS_FILE = "meta/norm_stats.json"
CORRELATION_FILE = "meta/action_correlation.npz"
FAST_TOKENIZER_DIR = "meta/fast_tokenizer"
CACHE_DIR = ".cache"

# Vector features every BEHAVIOR parquet carries and their widths (facts §2.2).
VECTOR_FEATURES = {
    schema.DATASET_ACTION_KEY: schema.ACTION_DIM,
    schema.DATASET_STATE_KEY: schema.PROPRIO_DIM,
    schema.DATASET_CAM_REL_POSES_KEY: schema.CAM_REL_POSES_DIM,
}
# Optional vector features: written when the episodes carry them (all or none of a dataset's
# episodes), width from meta/info.json (BEHAVIOR's task_info width varies per task, facts §2.2).
OPTIONAL_VECTOR_FEATURES = (schema.DATASET_TASK_INFO_KEY,)
# Vector features whose per-episode stats go to meta/episodes_stats.jsonl (facts §2.2).
STATS_FEATURES = tuple(VECTOR_FEATURES)
SCALAR_FEATURES = {
    "timestamp": "float64",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
ALL_VIDEO_KEYS = schema.DATASET_RGB_KEYS + schema.DATASET_DEPTH_KEYS + schema.DATASET_SEG_KEYS


class DatasetError(ValueError):
    """A dataset on disk is missing, malformed or not what the caller expected.

    The message always names the file (or directory) and what was expected there.
    """


def task_of_episode(episode_index: int) -> int:
    return int(episode_index) // EPISODES_PER_TASK_STRIDE


def data_path(root: Path, episode_index: int, template: str = DATA_PATH) -> Path:
    return Path(root) / template.format(
        episode_chunk=task_of_episode(episode_index), episode_index=int(episode_index)
    )


def video_path(root: Path, episode_index: int, video_key: str, template: str = VIDEO_PATH) -> Path:
    return Path(root) / template.format(
        episode_chunk=task_of_episode(episode_index), episode_index=int(episode_index), video_key=video_key
    )


def annotation_path(root: Path, episode_index: int, template: str = ANNOTATION_PATH) -> Path:
    return Path(root) / template.format(
        episode_chunk=task_of_episode(episode_index), episode_index=int(episode_index)
    )


def camera_key(camera: str) -> str:
    """'head' or 'observation.images.rgb.head' -> the dataset RGB video key; unknown names list valid ones."""
    if camera in schema.DATASET_RGB_KEYS:
        return camera
    if camera in schema.CAMERA_NAMES:
        return f"observation.images.rgb.{camera}"
    raise KeyError(
        f"unknown camera {camera!r}; valid cameras: {', '.join(schema.CAMERA_NAMES)} "
        f"(or their dataset keys {', '.join(schema.DATASET_RGB_KEYS)})"
    )


def camera_name(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def vector_feature_spec(dim: int) -> dict[str, Any]:
    return {"dtype": "float32", "shape": [dim], "names": None}


def video_feature_spec(height: int, width: int, codec: str, fps: int) -> dict[str, Any]:
    """LeRobot v2.1 video feature entry (facts §2.2: 3-channel video, yuv420p, 30 fps)."""
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.fps": fps,
            "video.height": height,
            "video.width": width,
            "video.channels": 3,
            "video.codec": codec,
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "has_audio": False,
        },
    }
