"""Resizing camera images to model resolution, identically for training data and serving.

The seed resizes with openpi's `image_tools.resize_with_pad` (PIL bilinear; for square images a
plain resize, spec §1.2). Training frames (frame cache) and live observations (policy runtime) go
through this one function so the model sees the same pixels in both.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        h, w = (int(s) for s in size)
    else:
        h = w = int(size)
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {size!r}")
    return h, w


def resize_pil_with_pad(img: Image.Image, height: int, width: int) -> np.ndarray:
    """PIL image -> (height, width, 3) uint8: bilinear, aspect kept, zero-padded (openpi resize_with_pad)."""
    img = img.convert("RGB") if img.mode != "RGB" else img
    cur_w, cur_h = img.size
    if (cur_h, cur_w) == (height, width):
        return np.asarray(img, dtype=np.uint8)
    ratio = max(cur_w / width, cur_h / height)
    new_h, new_w = int(cur_h / ratio), int(cur_w / ratio)
    resized = np.asarray(img.resize((new_w, new_h), resample=Image.BILINEAR), dtype=np.uint8)
    if (new_h, new_w) == (height, width):
        return resized
    out = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def resize_with_pad(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(..., H, W, C) uint8 -> (..., h, w, 3) uint8; C = 3 or 4 (alpha dropped, as the B1K obs may be RGBA)."""
    h, w = as_hw(size)
    arr = np.asarray(image)
    if arr.ndim < 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"expected an (..., H, W, 3|4) image array, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 image data, got {arr.dtype}")
    if arr.shape[-3:-1] == (h, w):
        return np.ascontiguousarray(arr)
    lead = arr.shape[:-3]
    flat = arr.reshape((-1,) + arr.shape[-3:])
    out = np.stack([resize_pil_with_pad(Image.fromarray(x), h, w) for x in flat])
    return out.reshape(lead + (h, w, 3))
