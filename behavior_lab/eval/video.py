"""Optional per-episode mp4: the three cameras side by side (like OmniGibson's eval videos)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from behavior_lab.data.schema import CONTROL_HZ


def write_mosaic_video(path: Path, frames: list[np.ndarray], fps: int = CONTROL_HZ) -> Path:
    """Encode (H, W, 3) uint8 frames with H.264 (yuv420p needs even sizes: pad by one pixel)."""
    import av

    frames = [f for f in frames if f is not None]
    if not frames:
        raise ValueError(f"no frames to write to {path}")
    h, w = frames[0].shape[:2]
    H, W = h + (h % 2), w + (w % 2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for f in frames:
            if f.shape[:2] != (H, W):
                f = np.pad(f, ((0, H - f.shape[0]), (0, W - f.shape[1]), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path
