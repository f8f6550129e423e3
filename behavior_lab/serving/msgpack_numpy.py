"""msgpack with numpy arrays: the openpi-client / OmniGibson wire format (DESIGN §5, facts §4).

Arrays travel as maps {__ndarray__: True, data: bytes, dtype: dtype.str, shape}; numpy scalars as
{__npgeneric__: True, data: item, dtype}. OmniGibson's client may also send torch tensors as
{__torch__: True, data, dtype: "float32", shape}; they are decoded to numpy arrays here so the
server never needs torch. Keys are written as bytes, like openpi-client's `pack_array`, and read
as bytes or str. Object, void and complex dtypes are refused (no pickle fallback).
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np


class WireFormatError(ValueError):
    """A message that is not valid msgpack-numpy."""


_ND, _NG, _TORCH = (b"__ndarray__", "__ndarray__"), (b"__npgeneric__", "__npgeneric__"), (b"__torch__", "__torch__")
_REFUSED_KINDS = ("V", "O", "c")


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in _REFUSED_KINDS:
        raise TypeError(f"unsupported dtype for the wire: {obj.dtype}")
    if isinstance(obj, np.ndarray):
        if not obj.flags.c_contiguous:
            obj = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": obj.data if obj.size else b"", b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot serialise {type(obj).__name__} to msgpack")


def _field(obj: dict, name: str) -> Any:
    if name.encode() in obj:
        return obj[name.encode()]
    if name in obj:
        return obj[name]
    raise WireFormatError(f"array map without {name!r} field")


def _dtype(raw: Any) -> np.dtype:
    s = raw.decode() if isinstance(raw, bytes) else str(raw)
    s = s.removeprefix("torch.")
    try:
        dt = np.dtype(s)
    except TypeError as exc:
        raise WireFormatError(f"unknown dtype {s!r} in array map") from exc
    if dt.kind in _REFUSED_KINDS:
        raise WireFormatError(f"refused dtype {dt} in array map")
    return dt


def _array(obj: dict) -> np.ndarray:
    dt = _dtype(_field(obj, "dtype"))
    data = _field(obj, "data")
    shape = _field(obj, "shape")
    if not isinstance(data, (bytes, bytearray, memoryview)) or not isinstance(shape, (list, tuple)):
        raise WireFormatError("array map needs bytes `data` and a list `shape`")
    try:
        shape = tuple(int(s) for s in shape)
        return np.ndarray(buffer=data, dtype=dt, shape=shape)
    except (TypeError, ValueError) as exc:
        raise WireFormatError(f"array data does not match dtype {dt} and shape {shape}: {exc}") from exc


def _object_hook(obj: dict) -> Any:
    if any(k in obj for k in _ND) or any(k in obj for k in _TORCH):
        return _array(obj)
    if any(k in obj for k in _NG):
        dt = _dtype(_field(obj, "dtype"))
        try:
            return dt.type(_field(obj, "data"))
        except (TypeError, ValueError, OverflowError) as exc:
            raise WireFormatError(f"numpy scalar does not fit dtype {dt}: {exc}") from exc
    return obj


class Packer:
    """Reusable packer (keeps its buffer between messages, like openpi-client's)."""

    def __init__(self) -> None:
        self._packer = msgpack.Packer(default=_pack_default)

    def pack(self, obj: Any) -> bytes:
        return self._packer.pack(obj)


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_pack_default)


def unpackb(data: bytes) -> Any:
    """Decode one message; any malformation raises `WireFormatError`."""
    try:
        return msgpack.unpackb(data, object_hook=_object_hook, strict_map_key=False)
    except WireFormatError:
        raise
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as exc:
        raise WireFormatError(f"not a msgpack message: {type(exc).__name__}: {exc}") from exc
