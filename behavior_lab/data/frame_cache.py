"""Decode-once frame cache: episodes' camera frames at model resolution as memory-mapped .npy.

Real BEHAVIOR videos are HEVC with a 250-frame GOP (facts §2.2): random access costs a seek plus
up to 249 decoded frames, far too slow for uniformly random training frames (spec §12.3). The
cache decodes each (episode, camera) once, resizes to the model resolution with the shared
`resize_with_pad`, and stores a (T, h, w, 3) uint8 array; samples then read one frame by index
from a memory map. The per-episode 23-D state and action (from parquet) are cached alongside, so
a training sample touches neither parquet nor video.

Layout: DIR/.cache/frames_<size>/ (size "64" or "64x48"), one .npy per entry and manifest.json
recording each entry's source file size and mtime (ns); a changed source invalidates its entry.
Builds hold an exclusive lock (fcntl) so concurrent runs sharing a cache do not race.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from behavior_lab.data import layout
from behavior_lab.data.atomic import save_npy, write_json
from behavior_lab.data.images import as_hw
from behavior_lab.data.layout import DatasetError
from behavior_lab.data.progress import progress_bar
from behavior_lab.data.reader import BehaviorDataset

MANIFEST = "manifest.json"
CACHE_VERSION = 1
LOWDIM_KEYS = ("state", "action")  # (T, 23) float32 each: extracted state (spec §1.2), absolute action
MAX_OPEN_MAPS = 512  # open memory maps kept (each holds a file descriptor)


def default_cache_dir(root: str | os.PathLike, size: int | tuple[int, int]) -> Path:
    h, w = as_hw(size)
    tag = f"{h}" if h == w else f"{h}x{w}"
    return Path(root) / layout.CACHE_DIR / f"frames_{tag}"


def _source_signature(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


class FrameCache:
    """Frames and low-dim arrays of a dataset's selected episodes, decoded once at `size`."""

    def __init__(
        self,
        dataset: BehaviorDataset,
        size: int | tuple[int, int],
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ):
        self.dataset = dataset
        self.size = as_hw(size)
        self.dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(dataset.root, self.size)
        self.progress = progress
        self._maps: OrderedDict[str, np.ndarray] = OrderedDict()
        self._entries: dict[str, dict] = self._read_manifest()

    # --- manifest ------------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, dict]:
        path = self.dir / MANIFEST
        if not path.is_file():
            return {}
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}  # a broken manifest only costs a rebuild
        if obj.get("version") != CACHE_VERSION or list(obj.get("size", [])) != list(self.size):
            return {}
        return dict(obj.get("entries", {}))

    def _write_manifest(self) -> None:
        write_json(
            self.dir / MANIFEST,
            {"version": CACHE_VERSION, "size": list(self.size), "dataset": str(self.dataset.root), "entries": self._entries},
            indent=None,
        )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # --- entries -------------------------------------------------------------------------------
    @staticmethod
    def frames_key(episode_index: int, camera_key: str) -> str:
        return f"{camera_key}/episode_{int(episode_index):08d}"

    @staticmethod
    def lowdim_key(episode_index: int, name: str) -> str:
        return f"lowdim/episode_{int(episode_index):08d}.{name}"

    def _source(self, key: str) -> Path:
        kind, ep_part = key.split("/", 1)
        ep = int(ep_part.split(".")[0].removeprefix("episode_"))
        if kind == "lowdim":
            return self.dataset.data_path(ep)
        return self.dataset.video_path(ep, kind)

    def _fresh(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None or not (self.dir / entry["file"]).is_file():
            return False
        src = self._source(key)
        if not src.is_file():
            raise DatasetError(f"{src}: source file missing (cached as {self.dir / entry['file']})")
        return entry["source_size"] == src.stat().st_size and entry["source_mtime_ns"] == src.stat().st_mtime_ns

    def _wanted(self, episodes: Iterable[int], frames: bool) -> list[tuple[int, str | None]]:
        """(episode, camera key) for frames and (episode, None) for the low-dim arrays."""
        out: list[tuple[int, str | None]] = []
        for ep in episodes:
            out.append((ep, None))
            if frames:
                out += [(ep, cam) for cam in self.dataset.cameras]
        return out

    def _is_fresh(self, ep: int, cam: str | None) -> bool:
        if cam is None:
            return all(self._fresh(self.lowdim_key(ep, n)) for n in LOWDIM_KEYS)
        return self._fresh(self.frames_key(ep, cam))

    def ensure(self, episodes: Iterable[int] | None = None, frames: bool = True) -> int:
        """Build every missing or stale entry of `episodes` (default: the dataset's selection).
        Returns the number of entries built; shows a progress bar while building."""
        eps = list(self.dataset.episode_indices if episodes is None else episodes)
        todo = [item for item in self._wanted(eps, frames) if not self._is_fresh(*item)]
        if not todo:
            return 0
        with self._lock():
            self._entries = self._read_manifest()  # another process may have built some meanwhile
            todo = [item for item in todo if not self._is_fresh(*item)]
            desc = f"frame cache {self.size[0]}x{self.size[1]}: decoding"
            for i, (ep, cam) in enumerate(progress_bar(todo, desc, enabled=self.progress)):
                self._build(ep, cam)
                if i % 32 == 31:
                    self._write_manifest()  # an interrupted build keeps what it finished
            self._write_manifest()
        return len(todo)

    def _record(self, key: str, array: np.ndarray, src_sig: dict[str, int]) -> None:
        rel = f"{key}.npy"
        save_npy(self.dir / rel, array)
        self._maps.pop(key, None)
        self._entries[key] = {
            "file": rel,
            "shape": list(array.shape),
            "source_size": src_sig["size"],
            "source_mtime_ns": src_sig["mtime_ns"],
        }

    def _build(self, ep: int, cam: str | None) -> None:
        if cam is None:
            src = self.dataset.data_path(ep)
            sig = _source_signature(src) if src.is_file() else None
            state, action = self.dataset.load_state_action(ep)  # validates (missing, widths, NaN/inf)
            for name, arr in zip(LOWDIM_KEYS, (state, action)):
                self._record(self.lowdim_key(ep, name), np.ascontiguousarray(arr, dtype=np.float32), sig)
            return
        src = self.dataset.video_path(ep, cam)
        if not src.is_file():
            raise DatasetError(f"{src}: video file missing (episode {ep}, camera {layout.camera_name(cam)})")
        sig = _source_signature(src)
        frames = self.dataset.decode_video(ep, cam, self.size)
        self._record(self.frames_key(ep, cam), frames, sig)

    # --- access --------------------------------------------------------------------------------
    def _open(self, key: str, ep: int, cam: str | None) -> np.ndarray:
        arr = self._maps.get(key)
        if arr is not None:
            self._maps.move_to_end(key)
            return arr
        entry = self._entries.get(key)
        if entry is None or not (self.dir / entry["file"]).is_file():
            self.ensure([ep], frames=cam is not None)  # built on demand
            entry = self._entries[key]
        arr = np.load(self.dir / entry["file"], mmap_mode="r")
        self._maps[key] = arr
        if len(self._maps) > MAX_OPEN_MAPS:
            self._maps.popitem(last=False)
        return arr

    def frames(self, episode_index: int, camera: str) -> np.ndarray:
        """(T, h, w, 3) uint8 memory map of one episode's camera."""
        cam = layout.camera_key(camera)
        return self._open(self.frames_key(episode_index, cam), episode_index, cam)

    def lowdim(self, episode_index: int, name: str) -> np.ndarray:
        """(T, 23) float32 memory map: name "state" (from proprio) or "action" (absolute)."""
        if name not in LOWDIM_KEYS:
            raise KeyError(f"unknown low-dim array {name!r}; choose one of {', '.join(LOWDIM_KEYS)}")
        return self._open(self.lowdim_key(episode_index, name), episode_index, None)

    def __getstate__(self) -> dict:
        # DataLoader workers re-open their own maps.
        state = dict(self.__dict__)
        state["_maps"] = OrderedDict()
        return state
