"""Training-time image augmentation of the seed (spec §12.4), on whole batches in torch.

Head camera: random crop to 95 % + resize back, then rotation by U(-5°, 5°).
All cameras: augmax-style ``ColorJitter(brightness=0.3, contrast=0.4, saturation=0.5)`` with the
library defaults hue=0.1, p=0.5, acting on the HSV value/hue channels with augmax's piecewise
brightness/contrast formulas (augmax/functional/colorspace.py). augmax's saturation branch throws its
result away, so saturation is a no-op in the seed; we keep that (no saturation knob).
Wrist cameras get no geometric augmentation.

Differences from augmax, on purpose: crop+resize+rotate is one affine ``grid_sample`` (one bilinear
interpolation instead of two); out-of-frame pixels after rotation are black (augmax: constant 0 too).
Input/output: ``images`` (B, C, H, W, 3) uint8 (interface) or float in [0, 1]; the output has the
input's dtype, so the model-side uint8 -> [-1, 1] conversion stays the one seam.
All randomness comes from the ``generator`` argument (or the global RNG), never hidden state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    head_camera_index: int = 0  # schema.CAMERA_NAMES order: head, left wrist, right wrist
    crop_scale: float = 0.95  # spec §12.4: RandomCrop 212/224
    rotate_degrees: float = 5.0  # spec §12.4
    brightness: float = 0.3  # spec §12.4
    contrast: float = 0.4  # spec §12.4
    hue: float = 0.1  # augmax default (spec §12.4)
    jitter_p: float = 0.5  # augmax default (spec §12.4)

    def __post_init__(self) -> None:
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"data.augment.crop_scale must be in (0, 1], got {self.crop_scale}")
        if not 0 <= self.jitter_p <= 1:
            raise ValueError(f"data.augment.jitter_p must be in [0, 1], got {self.jitter_p}")


def _uniform(shape, low, high, generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def head_geometric(x: torch.Tensor, cfg: AugmentConfig, generator=None) -> torch.Tensor:
    """Random 95 % crop + resize + rotation for a (N, 3, H, W) float batch, one affine warp each."""
    n = x.shape[0]
    dev = x.device
    s = cfg.crop_scale
    # crop window centre, in normalised coords: offsets up to (1 - s) keep the window inside the image
    tx = _uniform((n,), -(1 - s), (1 - s), generator, dev)
    ty = _uniform((n,), -(1 - s), (1 - s), generator, dev)
    theta = _uniform((n,), -1.0, 1.0, generator, dev) * math.radians(cfg.rotate_degrees)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # output grid -> rotate -> scale into the crop window -> shift to the window centre
    mat = torch.stack(
        [
            torch.stack([s * cos, -s * sin, tx], dim=-1),
            torch.stack([s * sin, s * cos, ty], dim=-1),
        ],
        dim=1,
    )  # (N, 2, 3)
    grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _rgb_to_hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = rgb.unbind(1)
    maxc, _ = rgb.max(1)
    minc, _ = rgb.min(1)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    dc = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / dc, (maxc - g) / dc, (maxc - b) / dc
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return h, s, v


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    h6 = (h % 1.0) * 6.0
    i = torch.floor(h6)
    f = h6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    r = torch.stack([v, q, p, p, t, v], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    g = torch.stack([t, v, v, q, p, p], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    b = torch.stack([p, p, t, v, v, q], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    return torch.stack([r, g, b], 1)


def adjust_brightness(value: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """augmax: darken by scaling for amount < 0, blend towards 1 for amount > 0."""
    return torch.where(amount < 0, value * (1 + amount), value * (1 - amount) + amount)


def adjust_contrast(value: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """augmax's invertible piecewise-linear contrast curve (slope tan((c+1)·π/4) around 0.5)."""
    slant = torch.tan((amount + 1.0) * (math.pi / 4))
    with torch.no_grad():
        p1 = (slant - slant.square()) / (2 * (1 - slant.square()))  # NaN at amount == 0: middle branch
    p2 = 1 - p1
    mid = slant * (value - 0.5) + 0.5
    low = value / slant
    high = value / slant + 1 - 1 / slant
    return torch.where(value < p1, low, torch.where(value > p2, high, mid))


def color_jitter(x: torch.Tensor, cfg: AugmentConfig, generator=None) -> torch.Tensor:
    """Per-image brightness, contrast and hue jitter with probability p, on a (N, 3, H, W) batch."""
    n = x.shape[0]
    dev = x.device
    shape = (n, 1, 1)
    b = _uniform(shape, -cfg.brightness, cfg.brightness, generator, dev)
    c = _uniform(shape, -cfg.contrast, cfg.contrast, generator, dev)
    dh = _uniform(shape, -cfg.hue, cfg.hue, generator, dev)
    apply = torch.rand((n, 1, 1, 1), generator=generator, device=dev) < cfg.jitter_p
    h, s, v = _rgb_to_hsv(x)
    if cfg.brightness > 0:
        v = adjust_brightness(v, b)
    if cfg.contrast > 0:
        v = adjust_contrast(v, c)
    if cfg.hue > 0:
        h = h + dh
    out = _hsv_to_rgb(h, s, v.clamp(0, 1))
    return torch.where(apply, out, x)


class ImageAugmenter:
    """Applies spec §12.4 to ``batch["images"]`` (B, C, H, W, 3); a no-op when disabled."""

    def __init__(self, cfg: AugmentConfig | None = None, **kwargs) -> None:
        self.cfg = cfg if cfg is not None else AugmentConfig(**kwargs)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.cfg.enabled:
            return images
        if images.ndim != 5 or images.shape[-1] != 3:
            raise ValueError(f"images must be (B, cameras, H, W, 3), got {tuple(images.shape)}")
        is_uint8 = images.dtype == torch.uint8
        x = images.float() / 255.0 if is_uint8 else images.float()
        bsz, ncam, hgt, wid, _ = x.shape
        x = x.permute(0, 1, 4, 2, 3)  # (B, C, 3, H, W)
        head = self.cfg.head_camera_index
        cams = []
        for cam in range(ncam):
            xc = x[:, cam]
            if cam == head:
                xc = head_geometric(xc, self.cfg, generator)
            xc = color_jitter(xc, self.cfg, generator)
            cams.append(xc)
        out = torch.stack(cams, 1).permute(0, 1, 3, 4, 2).clamp(0, 1)
        if is_uint8:
            return (out * 255.0).round().to(torch.uint8)
        return out.to(images.dtype)
