"""Checking and parsing one BEHAVIOR observation dict (DESIGN §5, facts §4, spec §13.2).

Everything the runtime reads from an observation passes through `parse_observation`, which
either returns a `ParsedObservation` or raises `ObservationError` naming the key, what arrived
and what was expected. Parsing happens before any runtime state changes, so a malformed message
leaves the session exactly as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from behavior_lab.data import schema


class ObservationError(ValueError):
    """A malformed observation: missing key, wrong shape/dtype, unknown task id."""


@dataclasses.dataclass(frozen=True)
class ParsedObservation:
    state: np.ndarray  # (23,) float32, the seed's state in the action layout (spec §1.2)
    task_id: int
    images: tuple[np.ndarray, np.ndarray, np.ndarray]  # head, left wrist, right wrist; (H, W, 3|4) uint8
    oracle_stage: int | None = None
    task_info: np.ndarray | None = None  # (D,) float32 privileged task_info (DESIGN §8 lever 5), if sent


def _get(obs: Mapping[str, Any], key: str) -> Any:
    if key not in obs:
        raise ObservationError(
            f"observation has no key {key!r}; a BEHAVIOR observation needs {schema.PROPRIO_KEY!r}, "
            f"{', '.join(repr(k) for k in schema.OBS_RGB_KEYS)} and {schema.TASK_ID_KEY!r} (DESIGN §5). "
            f"Keys received: {sorted(map(str, obs))[:12]}"
        )
    return obs[key]


def parse_task_id(value: Any) -> int:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.size != 1:
        raise ObservationError(
            f"{schema.TASK_ID_KEY!r} must be one integer (int64 array of shape (1,), facts §4); "
            f"got dtype {arr.dtype} shape {arr.shape}"
        )
    tid = int(arr.reshape(-1)[0])
    if not 0 <= tid < schema.NUM_TASKS:
        raise ObservationError(f"unknown task id {tid}; BEHAVIOR task ids are 0..{schema.NUM_TASKS - 1}")
    return tid


def parse_proprio(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.shape != (schema.PROPRIO_DIM,):
        raise ObservationError(
            f"{schema.PROPRIO_KEY!r} must be a numeric vector of shape ({schema.PROPRIO_DIM},) "
            f"(facts §2.4); got dtype {arr.dtype} shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ObservationError(f"{schema.PROPRIO_KEY!r} contains NaN or inf")
    return schema.extract_state_from_proprio(arr.astype(np.float64))


def parse_image(key: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise ObservationError(
            f"{key!r} must be an (H, W, 3) or (H, W, 4) uint8 image (facts §4); "
            f"got dtype {arr.dtype} shape {arr.shape}"
        )
    return arr


def parse_task_info(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.ndim != 1 or arr.size < 1:
        raise ObservationError(
            f"{schema.TASK_INFO_KEY!r} (privileged task info) must be a numeric vector; "
            f"got dtype {arr.dtype} shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ObservationError(f"{schema.TASK_INFO_KEY!r} contains NaN or inf")
    return arr.astype(np.float32)


def parse_observation(
    obs: Any, default_task_id: int | None = None, oracle_key: str | None = None, require_task_info: bool = False
) -> ParsedObservation:
    """require_task_info: the policy runs in the privileged observation mode and needs
    ``schema.TASK_INFO_KEY`` in every observation (otherwise it is parsed only when present)."""
    if not isinstance(obs, Mapping):
        raise ObservationError(f"an observation must be a dict, got {type(obs).__name__}")
    state = parse_proprio(_get(obs, schema.PROPRIO_KEY))
    if schema.TASK_ID_KEY in obs:
        tid = parse_task_id(obs[schema.TASK_ID_KEY])
    elif default_task_id is not None:
        tid = int(default_task_id)
    else:
        _get(obs, schema.TASK_ID_KEY)  # raises with the list of needed keys
        raise AssertionError("unreachable")
    images = tuple(parse_image(k, _get(obs, k)) for k in schema.OBS_RGB_KEYS)
    oracle = None
    if oracle_key and oracle_key in obs:
        o = np.asarray(obs[oracle_key])
        if o.dtype.kind not in "iu" or o.size != 1:
            raise ObservationError(f"{oracle_key!r} (oracle stage) must be one integer; got {o.dtype} {o.shape}")
        oracle = int(o.reshape(-1)[0])
    task_info = None
    if schema.TASK_INFO_KEY in obs:
        task_info = parse_task_info(obs[schema.TASK_INFO_KEY])
    elif require_task_info:
        raise ObservationError(
            f"observation has no key {schema.TASK_INFO_KEY!r}; this policy was trained in the privileged "
            "observation mode (model.task_info_dim > 0) and needs the task's object poses in every observation"
        )
    return ParsedObservation(state=state, task_id=tid, images=images, oracle_stage=oracle,  # type: ignore[arg-type]
                             task_info=task_info)
