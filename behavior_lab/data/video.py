"""MP4 encode/decode with PyAV: H.264 (libx264) and HEVC (libx265, as in the real dataset).

The real BEHAVIOR RGB streams are HEVC yuv420p, 720x720 (head) and 480x480 (wrists), with a
250-frame GOP (facts §2.2). Decoding resizes each frame to the requested model resolution with the
shared `images.resize_pil_with_pad`, so the full-resolution episode never sits in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from behavior_lab.data.atomic import atomic_path
from behavior_lab.data.images import as_hw, resize_pil_with_pad
from behavior_lab.data.layout import DatasetError

CODECS = {"libx264": "h264", "libx265": "hevc"}  # encoder -> codec name recorded in info.json


def encode_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 30,
    codec: str = "libx264",
    crf: int | None = None,
    gop: int = 30,
    preset: str = "fast",
) -> None:
    """Write (T, H, W, 3) uint8 frames to an mp4 atomically (temp file + rename).

    yuv420p needs even H and W. `gop` is the keyframe interval: the real dataset uses 250 (slow
    random access); the default 30 keeps raw-mp4 sampling tolerable for small embedded datasets.
    """
    if codec not in CODECS:
        raise ValueError(f"unknown video codec {codec!r}; choose one of {', '.join(CODECS)}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    if t == 0:
        raise ValueError(f"{path}: no frames to encode")
    if h % 2 or w % 2:
        raise ValueError(f"{path}: yuv420p video needs even height and width, got {h}x{w}")
    options = {"preset": preset}
    if codec == "libx265":
        options["crf"] = str(28 if crf is None else crf)
        options["x265-params"] = f"log-level=error:keyint={gop}:min-keyint={min(gop, 25)}"
    else:
        options["crf"] = str(23 if crf is None else crf)
        options["g"] = str(gop)
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=fps, options=options)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            if codec == "libx265":
                stream.codec_context.codec_tag = "hvc1"  # playable by QuickTime/browsers too
            for img in frames:
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


class VideoReader:
    """Sequential or random frame access to one mp4, frames resized to `size` (None = native).

    Random access seeks to the keyframe at or before the target and decodes forward; reading
    frames in increasing order continues decoding without seeking.
    """

    def __init__(self, path: str | os.PathLike, size: int | tuple[int, int] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: video file missing (expected an mp4 for this episode/camera)")
        self.size = None if size is None else as_hw(size)
        try:
            self._container = av.open(str(self.path))
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as e:
            raise DatasetError(f"{self.path}: cannot open as an mp4 video stream ({e}); the file may be truncated") from e
        self._stream.thread_type = "AUTO"
        tb = self._stream.time_base
        self._fps = float(self._stream.average_rate or self._stream.guessed_rate or 30)
        self._tb = float(tb) if tb is not None else 1.0 / self._fps
        self._start = self._stream.start_time or 0
        self._iter: Iterator[av.VideoFrame] | None = None
        self._next_index = 0

    @property
    def num_frames(self) -> int:
        """Frame count from the container header (0 when the container does not say)."""
        return int(self._stream.frames or 0)

    def _index_of(self, frame: av.VideoFrame) -> int:
        return int(round((frame.pts - self._start) * self._tb * self._fps))

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        if self.size is None:
            return frame.to_ndarray(format="rgb24")
        return resize_pil_with_pad(frame.to_image(), *self.size)

    def _frames(self) -> Iterator[av.VideoFrame]:
        try:
            yield from self._container.decode(self._stream)
        except av.error.FFmpegError as e:
            raise DatasetError(f"{self.path}: video decoding failed ({e}); the file may be truncated or corrupt") from e

    def read(self, index: int) -> np.ndarray:
        if index < 0:
            raise IndexError(f"{self.path}: negative frame index {index}")
        if self._iter is None or index < self._next_index or index > self._next_index + 60:
            try:
                target = int(index / self._fps / self._tb) + self._start
                self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            except av.error.FFmpegError as e:
                raise DatasetError(f"{self.path}: seek to frame {index} failed ({e})") from e
            self._iter = self._frames()
        for frame in self._iter:
            i = self._index_of(frame)
            self._next_index = i + 1
            if i == index:
                return self._convert(frame)
            if i > index:
                break
        self._iter = None
        raise DatasetError(f"{self.path}: frame {index} not found; the video has fewer frames than the episode")

    def read_all(self, expected_frames: int | None = None) -> np.ndarray:
        """All frames, (T, h, w, 3) uint8; checks T against `expected_frames` (the episode length)."""
        self._container.seek(0)
        out = [self._convert(f) for f in self._frames()]
        self._iter = None
        if not out:
            raise DatasetError(f"{self.path}: no decodable frames; the file may be truncated")
        if expected_frames is not None and len(out) != expected_frames:
            raise DatasetError(
                f"{self.path}: decoded {len(out)} frames, expected {expected_frames} "
                "(the episode length in meta/episodes.jsonl); the video may be truncated"
            )
        return np.stack(out)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_video(
    path: str | os.PathLike, size: int | tuple[int, int] | None = None, expected_frames: int | None = None
) -> np.ndarray:
    with VideoReader(path, size) as reader:
        return reader.read_all(expected_frames)


def video_codec_name(path: str | os.PathLike) -> str:
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.name
