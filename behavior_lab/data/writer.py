"""Write demonstrations in the BEHAVIOR LeRobot v2.1 layout (DESIGN §5, facts §2.2).

The simulator's demo recorder calls `add_episode` once per demonstration and `finalize` at the end
(docs/interfaces.md). Every file is written atomically (temp file + rename); the meta files are
written only by `finalize`, info.json last, so a dataset without info.json is an unfinished one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from behavior_lab.data import layout, schema
from behavior_lab.data.atomic import write_json, write_jsonl
from behavior_lab.data.episode_stats import episode_displacements, feature_stats
from behavior_lab.data.images import resize_with_pad
from behavior_lab.data.layout import DatasetError
from behavior_lab.data.parquet_io import check_finite, write_episode_table
from behavior_lab.data.video import CODECS, encode_video

# 3-channel uint8 streams the writer can encode (depth is 16-bit in the real data and not produced here).
WRITABLE_VIDEO_KEYS = schema.DATASET_RGB_KEYS + schema.DATASET_SEG_KEYS


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class DatasetWriter:
    """Writer for one dataset directory.

    image_size: None keeps the frames' resolution; an int/(h, w), or a {camera: size} mapping,
    resizes before encoding (shared `resize_with_pad`). codec: "libx264" (default) or "libx265"
    (HEVC, like the real dataset). append=True continues an existing dataset (new episodes are
    numbered after the existing ones of the same task).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        fps: int = schema.CONTROL_HZ,
        image_size: int | tuple[int, int] | Mapping[str, int] | None = None,
        codec: str = "libx264",
        crf: int | None = None,
        gop: int = 30,
        task_prompts: Mapping[int, str] | None = None,
        append: bool = False,
    ):
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
        self.root = Path(root)
        self.fps, self.codec, self.crf, self.gop = int(fps), codec, crf, int(gop)
        self.image_size = image_size
        self.task_prompts = dict(task_prompts or {})
        self._episodes: dict[int, dict] = {}
        self._episode_stats: dict[int, dict] = {}
        self._tasks: dict[int, dict] = {}
        self._video_shapes: dict[str, list[int]] = {}
        self._optional_dims: dict[str, int] = {}  # optional vector features of this dataset -> width
        info_path = self.root / layout.INFO_FILE
        if info_path.exists():
            if not append:
                raise DatasetError(
                    f"{info_path}: a dataset already exists here; pass append=True to add episodes "
                    "or choose a new directory"
                )
            self._load_existing(info_path)

    # --- existing dataset (append) ------------------------------------------------------------
    def _load_existing(self, info_path: Path) -> None:
        info = json.loads(info_path.read_text())
        if info.get("codebase_version") != layout.CODEBASE_VERSION:
            raise DatasetError(
                f"{info_path}: codebase_version {info.get('codebase_version')!r}; can only append to "
                f"{layout.CODEBASE_VERSION} datasets"
            )
        if int(info.get("fps", self.fps)) != self.fps:
            raise DatasetError(f"{info_path}: dataset fps is {info['fps']}, writer fps is {self.fps}")
        for key, feat in info.get("features", {}).items():
            if key in layout.OPTIONAL_VECTOR_FEATURES:
                self._optional_dims[key] = int(feat["shape"][0])
            if feat.get("dtype") == "video":
                self._video_shapes[key] = list(feat["shape"])
                codec = feat.get("info", {}).get("video.codec")
                if codec and codec != CODECS[self.codec]:
                    raise DatasetError(
                        f"{info_path}: existing videos use codec {codec!r}; the writer was asked for {self.codec}"
                    )
        for row in _read_jsonl(self.root / layout.EPISODES_FILE):
            self._episodes[int(row["episode_index"])] = row
        for row in _read_jsonl(self.root / layout.TASKS_FILE):
            self._tasks[int(row["task_index"])] = row
        stats_path = self.root / layout.EPISODES_STATS_FILE
        if stats_path.exists():
            for row in _read_jsonl(stats_path):
                self._episode_stats[int(row["episode_index"])] = row

    # --- episodes ------------------------------------------------------------------------------
    def _next_episode_index(self, task: int) -> int:
        base = task * layout.EPISODES_PER_TASK_STRIDE
        used = [e for e in self._episodes if layout.task_of_episode(e) == task]
        return max(used) + 1 if used else base

    def _target_size(self, key: str) -> int | tuple[int, int] | None:
        if self.image_size is None:
            return None
        if isinstance(self.image_size, Mapping):
            return self.image_size.get(layout.camera_name(key), self.image_size.get(key))
        return self.image_size

    def _validate(self, frames: Mapping[str, np.ndarray]) -> tuple[int, dict[str, np.ndarray]]:
        missing = [k for k in layout.VECTOR_FEATURES if k not in frames]
        if missing:
            raise DatasetError(f"episode frames lack {', '.join(missing)}; expected keys {', '.join(layout.VECTOR_FEATURES)} + video keys")
        writable = (*layout.VECTOR_FEATURES, *layout.OPTIONAL_VECTOR_FEATURES, *WRITABLE_VIDEO_KEYS)
        unknown = [k for k in frames if k not in writable]
        if unknown:
            raise DatasetError(
                f"episode frames have unknown key(s) {', '.join(unknown)}; writable keys: {', '.join(writable)}"
            )
        arrays: dict[str, np.ndarray] = {}
        length = len(np.asarray(frames[schema.DATASET_ACTION_KEY]))
        if length < 1:
            raise DatasetError("episode has no frames")
        optional = [k for k in layout.OPTIONAL_VECTOR_FEATURES if k in frames]
        if self._episodes and set(optional) != set(self._optional_dims):
            raise DatasetError(
                f"episode frames carry optional feature(s) {sorted(optional)}; the dataset's earlier episodes "
                f"carry {sorted(self._optional_dims)} (every episode must carry the same columns)"
            )
        # width None: an optional feature's first episode sets it
        widths = {**layout.VECTOR_FEATURES, **{k: self._optional_dims.get(k) for k in optional}}
        for key, dim in widths.items():
            a = np.asarray(frames[key], dtype=np.float32)
            if a.ndim != 2 or a.shape[1] < 1 or (dim is not None and a.shape[1] != dim):
                raise DatasetError(f"episode frames[{key!r}] has shape {a.shape}; expected ({length}, "
                                   f"{dim if dim is not None else 'D >= 1'})")
            check_finite(a, key, "episode frames")
            arrays[key] = a
        video_keys = [k for k in frames if k in WRITABLE_VIDEO_KEYS]
        if not video_keys:
            raise DatasetError(f"episode frames have no video stream; expected some of {', '.join(schema.DATASET_RGB_KEYS)}")
        for key in video_keys:
            v = np.asarray(frames[key])
            if v.ndim != 4 or v.shape[-1] not in (3, 4) or v.dtype != np.uint8:
                raise DatasetError(f"episode frames[{key!r}] has shape {v.shape} {v.dtype}; expected (T, H, W, 3) uint8")
            size = self._target_size(key)
            arrays[key] = resize_with_pad(v, size) if size is not None else np.ascontiguousarray(v[..., :3])
        for key, a in arrays.items():
            if len(a) != length:
                raise DatasetError(f"episode frames[{key!r}] has {len(a)} frames; {schema.DATASET_ACTION_KEY!r} has {length}")
        if self._video_shapes and set(video_keys) != set(self._video_shapes):
            raise DatasetError(
                f"episode video streams {sorted(video_keys)} differ from the dataset's {sorted(self._video_shapes)}"
            )
        for key in video_keys:
            shape = list(arrays[key].shape[1:])
            if key in self._video_shapes and self._video_shapes[key] != shape:
                raise DatasetError(f"episode frames[{key!r}] are {shape}; earlier episodes are {self._video_shapes[key]}")
        return length, arrays

    def add_episode(
        self,
        task_index: int | str,
        frames: Mapping[str, np.ndarray],
        annotations: dict[str, Any] | None = None,
        episode_index: int | None = None,
    ) -> int:
        """Write one episode's parquet, videos and annotation; returns its episode index."""
        task = schema.task_id(task_index)
        length, arrays = self._validate(frames)
        if episode_index is None:
            episode_index = self._next_episode_index(task)
        elif layout.task_of_episode(episode_index) != task:
            raise DatasetError(f"episode index {episode_index} belongs to task {layout.task_of_episode(episode_index)}, not {task}")
        if episode_index in self._episodes:
            raise DatasetError(f"episode {episode_index} already exists in {self.root}")
        start_index = sum(int(e["length"]) for e in self._episodes.values())
        vector_keys = [*layout.VECTOR_FEATURES, *(k for k in layout.OPTIONAL_VECTOR_FEATURES if k in arrays)]
        columns: dict[str, np.ndarray] = {k: arrays[k] for k in vector_keys}
        columns["timestamp"] = np.arange(length, dtype=np.float64) / self.fps
        columns["frame_index"] = np.arange(length, dtype=np.int64)
        columns["episode_index"] = np.full(length, episode_index, dtype=np.int64)
        columns["index"] = np.arange(start_index, start_index + length, dtype=np.int64)
        columns["task_index"] = np.full(length, task, dtype=np.int64)
        video_keys = [k for k in arrays if k not in vector_keys]
        for key in video_keys:
            encode_video(
                layout.video_path(self.root, episode_index, key), arrays[key], self.fps, self.codec, self.crf, self.gop
            )
            self._video_shapes.setdefault(key, list(arrays[key].shape[1:]))
        for key in vector_keys[len(layout.VECTOR_FEATURES):]:
            self._optional_dims.setdefault(key, int(arrays[key].shape[1]))
        if annotations is not None:
            write_json(layout.annotation_path(self.root, episode_index), annotations)
        # The parquet is the episode's "commit": written after its videos.
        write_episode_table(layout.data_path(self.root, episode_index), columns)
        name = schema.task_name(task)
        self._tasks.setdefault(
            task, {"task_index": task, "task_name": name, "task": self.task_prompts.get(task, name.replace("_", " "))}
        )
        self._episodes[episode_index] = {
            "episode_index": episode_index,
            "tasks": [name],
            "length": length,
            **episode_displacements(arrays[schema.DATASET_STATE_KEY]),
        }
        self._episode_stats[episode_index] = {
            "episode_index": episode_index,
            "stats": {k: feature_stats(arrays[k]) for k in layout.STATS_FEATURES},
        }
        return episode_index

    # --- meta ----------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        total_frames = sum(int(e["length"]) for e in self._episodes.values())
        features: dict[str, Any] = {}
        for key, (h, w, _) in sorted(self._video_shapes.items()):
            features[key] = layout.video_feature_spec(h, w, CODECS[self.codec], self.fps)
        for key, dim in (*layout.VECTOR_FEATURES.items(), *self._optional_dims.items()):
            features[key] = layout.vector_feature_spec(dim)
        for key, dtype in layout.SCALAR_FEATURES.items():
            features[key] = {"dtype": dtype, "shape": [1], "names": None}
        n = len(self._episodes)
        return {
            "codebase_version": layout.CODEBASE_VERSION,
            "robot_type": layout.ROBOT_TYPE,
            "total_episodes": n,
            "total_frames": total_frames,
            "total_tasks": len(self._tasks),
            "total_videos": n * len(self._video_shapes),
            "total_chunks": len({layout.task_of_episode(e) for e in self._episodes}),
            "chunks_size": layout.CHUNKS_SIZE,
            "fps": self.fps,
            "splits": {"train": f"0:{n}"},
            "data_path": layout.DATA_PATH,
            "video_path": layout.VIDEO_PATH,
            "annotation_path": layout.ANNOTATION_PATH,
            "features": features,
        }

    def finalize(self) -> Path:
        """Write tasks.jsonl, episodes.jsonl, episodes_stats.jsonl, then info.json; returns the root."""
        if not self._episodes:
            raise DatasetError(f"{self.root}: no episodes were added; nothing to finalize")
        write_jsonl(self.root / layout.TASKS_FILE, [self._tasks[t] for t in sorted(self._tasks)])
        write_jsonl(self.root / layout.EPISODES_FILE, [self._episodes[e] for e in sorted(self._episodes)])
        write_jsonl(
            self.root / layout.EPISODES_STATS_FILE,
            [self._episode_stats[e] for e in sorted(self._episode_stats)],
        )
        write_json(self.root / layout.INFO_FILE, self.info(), indent=4)
        return self.root

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
