"""Units of sweep work and their deterministic ids.

A unit is one thing the sweep runs once and records in the ledger: preparing a dataset (`data`),
one training (`train`), or evaluating one checkpoint under one inference setting on one task
(`eval`). Its id is the SHA-256 of its canonical description (JSON with sorted keys, no spaces),
so the same configuration gets the same id in every process, on every machine, in every rerun —
unlike Python's `hash()`, which is salted per process. Cell names never enter an id: two sweeps
that share a training configuration share its training.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ID_LENGTH = 16  # hex digits of SHA-256 kept: 64 bits, collision-free for any realistic sweep
KINDS = ("data", "train", "eval")


def canonical(value: Any, strict: bool = True) -> Any:
    """A JSON-ready normal form: mappings sorted, tuples -> lists, -0.0 -> 0.0, ints stay ints.

    strict: reject NaN/inf (ids must hash a well-defined value); False lets metrics carry NaN.
    """
    if isinstance(value, Mapping):
        return {str(k): canonical(v, strict) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical(v, strict) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            if not strict:
                return value
            raise ValueError(f"non-finite number {value!r} in a unit description")
        if value.is_integer() and abs(value) < 2**53:
            return float(value) + 0.0
        return value
    if hasattr(value, "item"):  # numpy scalars
        return canonical(value.item(), strict)
    raise TypeError(f"cannot describe {type(value).__name__} {value!r} in a unit id; use plain values")


def canonical_json(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def unit_id(description: Mapping[str, Any]) -> str:
    """Deterministic id of a unit description (stable across processes and Python versions)."""
    return hashlib.sha256(canonical_json(description).encode()).hexdigest()[:ID_LENGTH]


def format_override_value(value: Any) -> str:
    """A Hydra override value for a plain Python value (bools lower-case, lists in brackets)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_override_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        plain = value and all(c.isalnum() or c in "_-./:" for c in value)
        return value if plain else "'" + value.replace("'", "\\'") + "'"
    return str(value)


@dataclass(frozen=True)
class Unit:
    """One unit of work. `description` is what the id hashes; `overrides` what the stage receives."""

    kind: str
    description: Mapping[str, Any]
    overrides: tuple[str, ...] = ()
    depends_on: str | None = None  # id of the unit whose output this one needs
    task: str | None = None
    seed: int | None = None
    id: str = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unit kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        object.__setattr__(self, "id", unit_id({"kind": self.kind, **self.description}))


def dedupe(units: Sequence[Unit]) -> list[Unit]:
    """Units in first-seen order, one per id."""
    seen: dict[str, Unit] = {}
    for u in units:
        seen.setdefault(u.id, u)
    return list(seen.values())
