"""Sample transforms as frozen input/output pairs, shared by training and serving (openpi style).

Each transform maps a dict {"state": (..., D), "actions": (..., H, D), ...} to a new dict; the
input dict is not modified. A transform constructed with `enabled=False` returns its input
unchanged (the same object), so "off" is exactly the identity.

Training order (spec §8.2): DeltaActions -> NormalizeActions -> NormalizeState -> PadTo(32).
Serving output order: UnnormalizeActions -> AbsoluteActions (needs the *raw* 23-D state in
data["state"]) -> TruncateTo(23).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from behavior_lab.data import schema

# spec §8.2: every z-score divides by (std + 1e-6); openpi quantile maps by (q99 - q01 + 1e-6).
NORM_EPS = 1e-6
NormMode = Literal["per_timestep", "global", "quantile"]
NORM_MODES = ("per_timestep", "global", "quantile")

Data = Mapping[str, Any]


def _replace(data: Data, **values: Any) -> dict:
    out = dict(data)
    out.update(values)
    return out


def _as_mask(mask: Sequence[bool] | np.ndarray) -> np.ndarray:
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 1:
        raise ValueError(f"delta mask must be 1-D, got shape {m.shape}")
    return m


# --- delta <-> absolute (spec §8.1) ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class DeltaActions:
    """a_k - s_0 on the masked dims, relative to the chunk-start state (not cumulative; spec §8.1)."""

    mask: np.ndarray = dataclasses.field(default_factory=lambda: schema.DELTA_ACTION_MASK.copy())
    enabled: bool = True

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        mask = _as_mask(self.mask)
        n = mask.shape[0]
        actions = np.array(data["actions"], copy=True)
        state = np.asarray(data["state"])[..., None, :n]  # (..., 1, n)
        actions[..., :n] = np.where(mask, actions[..., :n] - state, actions[..., :n])
        return _replace(data, actions=actions)


@dataclasses.dataclass(frozen=True, eq=False)
class AbsoluteActions:
    """Inverse of DeltaActions: adds the raw chunk-start state back on the masked dims."""

    mask: np.ndarray = dataclasses.field(default_factory=lambda: schema.DELTA_ACTION_MASK.copy())
    enabled: bool = True

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        mask = _as_mask(self.mask)
        n = mask.shape[0]
        actions = np.array(data["actions"], copy=True)
        state = np.asarray(data["state"])[..., None, :n]
        actions[..., :n] = np.where(mask, actions[..., :n] + state, actions[..., :n])
        return _replace(data, actions=actions)


# --- action normalisation (spec §8.2) --------------------------------------------------------------
def _action_params(stats: Any, mode: str) -> tuple[np.ndarray, np.ndarray]:
    if mode == "per_timestep":
        return np.asarray(stats.action_mean), np.asarray(stats.action_std)
    if mode == "global":
        return np.asarray(stats.action_global_mean), np.asarray(stats.action_global_std)
    if mode == "quantile":
        return np.asarray(stats.action_q01), np.asarray(stats.action_q99)
    raise ValueError(f"unknown action normalisation mode {mode!r}; choose one of {', '.join(NORM_MODES)}")


def _fit(param: np.ndarray, x: np.ndarray, fill: float) -> np.ndarray:
    """Slice stats to x's trailing shape (shorter horizons for inpainting use rows 0..k-1, spec §8.2);
    dims beyond the stats are padded with `fill` (mean 0 / std 1: identity on padding)."""
    p = np.asarray(param, dtype=np.float64)
    if p.ndim == 2:  # (H, D) per-timestep
        if x.shape[-2] > p.shape[0]:
            raise ValueError(f"actions have {x.shape[-2]} steps; per-timestep stats cover {p.shape[0]}")
        p = p[: x.shape[-2]]
    d = x.shape[-1]
    if p.shape[-1] >= d:
        return p[..., :d]
    pad = np.full(p.shape[:-1] + (d - p.shape[-1],), fill)
    return np.concatenate([p, pad], axis=-1)


def _normalize(x: np.ndarray, a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """(x − μ)/(σ + 1e-6), or 2(x − q01)/(q99 − q01 + 1e-6) − 1 for quantile (a, b = μ, σ or q01, q99)."""
    x = np.asarray(x, dtype=np.float64)
    if mode == "quantile":
        q01, q99 = _fit(a, x, -1.0), _fit(b, x, 1.0)
        y = (x - q01) / (q99 - q01 + NORM_EPS) * 2.0 - 1.0
    else:
        y = (x - _fit(a, x, 0.0)) / (_fit(b, x, 1.0) + NORM_EPS)
    return y.astype(np.float32)


def _unnormalize(x: np.ndarray, a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """The exact inverse of `_normalize`."""
    x = np.asarray(x, dtype=np.float64)
    if mode == "quantile":
        q01, q99 = _fit(a, x, -1.0), _fit(b, x, 1.0)
        y = (x + 1.0) / 2.0 * (q99 - q01 + NORM_EPS) + q01
    else:
        y = x * (_fit(b, x, 1.0) + NORM_EPS) + _fit(a, x, 0.0)
    return y.astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class NormalizeActions:
    """z-score per timestep ((30,32) stats) or global ((32,)), or quantile to [-1, 1] (q01/q99)."""

    a: np.ndarray  # mean, or q01 for quantile
    b: np.ndarray  # std, or q99 for quantile
    mode: NormMode = "per_timestep"
    enabled: bool = True

    @classmethod
    def from_stats(cls, stats: Any, mode: NormMode = "per_timestep", enabled: bool = True) -> "NormalizeActions":
        return cls(*_action_params(stats, mode), mode=mode, enabled=enabled)

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        return _replace(data, actions=_normalize(data["actions"], self.a, self.b, self.mode))


@dataclasses.dataclass(frozen=True, eq=False)
class UnnormalizeActions:
    """Inverse of NormalizeActions: x·(σ + 1e-6) + μ, or (x + 1)/2·(q99 − q01 + 1e-6) + q01."""

    a: np.ndarray
    b: np.ndarray
    mode: NormMode = "per_timestep"
    enabled: bool = True

    @classmethod
    def from_stats(cls, stats: Any, mode: NormMode = "per_timestep", enabled: bool = True) -> "UnnormalizeActions":
        return cls(*_action_params(stats, mode), mode=mode, enabled=enabled)

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        return _replace(data, actions=_unnormalize(data["actions"], self.a, self.b, self.mode))


# --- state normalisation (spec §8.2: global z-score over all frames) -------------------------------
def _state_params(stats: Any, mode: str) -> tuple[np.ndarray, np.ndarray]:
    if mode == "global":
        return np.asarray(stats.state_mean), np.asarray(stats.state_std)
    if mode == "quantile":
        return np.asarray(stats.state_q01), np.asarray(stats.state_q99)
    raise ValueError(f"unknown state normalisation mode {mode!r}; choose 'global' or 'quantile'")


@dataclasses.dataclass(frozen=True, eq=False)
class NormalizeState:
    a: np.ndarray
    b: np.ndarray
    mode: Literal["global", "quantile"] = "global"
    enabled: bool = True

    @classmethod
    def from_stats(cls, stats: Any, mode: Literal["global", "quantile"] = "global", enabled: bool = True) -> "NormalizeState":
        return cls(*_state_params(stats, mode), mode=mode, enabled=enabled)

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        return _replace(data, state=_normalize(data["state"], self.a, self.b, self.mode))


@dataclasses.dataclass(frozen=True, eq=False)
class UnnormalizeState:
    a: np.ndarray
    b: np.ndarray
    mode: Literal["global", "quantile"] = "global"
    enabled: bool = True

    @classmethod
    def from_stats(cls, stats: Any, mode: Literal["global", "quantile"] = "global", enabled: bool = True) -> "UnnormalizeState":
        return cls(*_state_params(stats, mode), mode=mode, enabled=enabled)

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        return _replace(data, state=_unnormalize(data["state"], self.a, self.b, self.mode))


# --- padding (spec §1.3: D = 32) -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PadTo:
    """Zero-pad the last axis of `keys` to `dim`; arrays already that wide are left as they are."""

    dim: int = schema.PADDED_DIM
    keys: tuple[str, ...] = ("state", "actions")
    enabled: bool = True

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        out = dict(data)
        for k in self.keys:
            if k not in data:
                continue
            x = np.asarray(data[k])
            if x.shape[-1] > self.dim:
                raise ValueError(f"{k!r} has {x.shape[-1]} dims; cannot pad to {self.dim}")
            if x.shape[-1] < self.dim:
                pad = [(0, 0)] * (x.ndim - 1) + [(0, self.dim - x.shape[-1])]
                x = np.pad(x, pad)
            out[k] = x
        return out


@dataclasses.dataclass(frozen=True)
class TruncateTo:
    """Inverse of PadTo: keep the first `dim` entries of the last axis (B1kOutputs, spec §8.2)."""

    dim: int = schema.ACTION_DIM
    keys: tuple[str, ...] = ("state", "actions")
    enabled: bool = True

    def __call__(self, data: Data) -> Data:
        if not self.enabled:
            return data
        out = dict(data)
        for k in self.keys:
            if k in data:
                out[k] = np.asarray(data[k])[..., : self.dim]
        return out


def apply(transforms: Sequence[Any], data: Data) -> Data:
    """Run transforms in order."""
    for t in transforms:
        data = t(data)
    return data
