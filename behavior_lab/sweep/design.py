"""Sweep designs: which cells an ablation runs.

A cell is one setting of the innovation toggles (on/off) and of any swept hyperparameters.
Every toggle and hyperparameter belongs to a stage (DESIGN §4):
- `train`: changes the checkpoint (correlated_noise, multi_sample_fm, kv_transform, system2, ...);
- `inference`: only changes how a checkpoint is run (inpainting, spline_speedup, ...).
The planner uses the split to train once per distinct training part of the cells.

Designs (`sweep.mode`):
- `grid`           every combination of `sweep.toggles` (x every combination of `sweep.params`);
- `leave_one_out`  all listed toggles on, plus one cell per toggle with that toggle off;
- `add_one_in`     all listed toggles off, plus one cell per toggle with that toggle on;
- `custom`         the cells listed in `sweep.cells` ({name, toggles: {...}, params: {...}});
- `search`         cells proposed by an Optuna sampler (behavior_lab.sweep.search).
`sweep.fixed` pins toggles/params that are not varied; a toggle neither varied nor fixed is left
to the train/eval configs' own defaults and does not appear in the cell.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from behavior_lab.sweep.units import format_override_value

STAGES = ("train", "inference")
MODES = ("grid", "leave_one_out", "add_one_in", "custom", "search")


@dataclass(frozen=True)
class Toggle:
    """One innovation switch: the stage it acts in and the overrides that turn it on/off."""

    name: str
    stage: str
    code: str
    on: tuple[str, ...]
    off: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"toggles.{self.name}.stage={self.stage!r}; valid stages: {', '.join(STAGES)}")

    def overrides(self, value: bool) -> tuple[str, ...]:
        return self.on if value else self.off


@dataclass(frozen=True)
class Registry:
    """All known toggles, plus the rule that assigns a stage to a hyperparameter key."""

    toggles: Mapping[str, Toggle]
    inference_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, toggles: Mapping[str, Mapping], inference_prefixes: Sequence[str] = ()) -> Registry:
        out = {}
        for name, node in toggles.items():
            missing = {"stage", "enable", "disable"} - set(map(str, node))
            if missing:
                raise KeyError(f"toggles.{name} lacks keys {sorted(missing)} (need stage, enable, disable[, code])")
            out[name] = Toggle(
                name,
                str(node["stage"]),
                str(node.get("code", name)),
                tuple(str(o) for o in node["enable"]),
                tuple(str(o) for o in node["disable"]),
            )
        codes = [t.code for t in out.values()]
        if len(set(codes)) != len(codes):
            raise ValueError(f"toggle codes must be unique, got {codes}")
        return cls(out, tuple(inference_prefixes))

    def toggle(self, name: str) -> Toggle:
        if name not in self.toggles:
            near = difflib.get_close_matches(name, list(self.toggles), n=2)
            hint = f" Did you mean {' or '.join(near)}?" if near else ""
            raise KeyError(f"unknown toggle {name!r}.{hint} Known toggles: {', '.join(self.toggles)}")
        return self.toggles[name]

    def param_stage(self, key: str) -> str:
        return "inference" if any(key.startswith(p) for p in self.inference_prefixes) else "train"

    def stage_of(self, name: str) -> str:
        return self.toggles[name].stage if name in self.toggles else self.param_stage(name)


@dataclass(frozen=True)
class Cell:
    """One ablation cell. `toggles` name -> bool; `params` hyperparameter key -> value."""

    name: str
    toggles: Mapping[str, bool] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    def part(self, registry: Registry, stage: str) -> dict[str, Any]:
        """The cell's settings that act in `stage` (a plain dict: what the unit ids hash)."""
        out: dict[str, Any] = {f"toggle:{n}": v for n, v in self.toggles.items() if registry.toggle(n).stage == stage}
        out.update({f"param:{k}": v for k, v in self.params.items() if registry.param_stage(k) == stage})
        return out

    def overrides(self, registry: Registry, stage: str) -> list[str]:
        ovs: list[str] = []
        for n in sorted(self.toggles):
            t = registry.toggle(n)
            if t.stage == stage:
                ovs.extend(t.overrides(self.toggles[n]))
        for k in sorted(self.params):
            if registry.param_stage(k) == stage:
                ovs.append(f"{k}={format_override_value(self.params[k])}")
        return ovs

    def description(self) -> dict[str, Any]:
        """What the reports see: `toggles` holds toggles and hyperparameters alike (one column each)."""
        return {"cell": self.name, "toggles": {**dict(self.toggles), **dict(self.params)}}


@dataclass(frozen=True)
class Design:
    mode: str
    toggles: tuple[str, ...]
    params: Mapping[str, tuple]  # key -> values to sweep
    fixed: Mapping[str, Any]  # toggle name or param key -> value
    custom: tuple[Mapping, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            near = difflib.get_close_matches(self.mode, MODES, n=1)
            hint = f" Did you mean {near[0]}?" if near else ""
            raise ValueError(f"sweep.mode={self.mode!r}.{hint} Valid modes: {', '.join(MODES)}")
        if len(set(self.toggles)) != len(self.toggles):
            raise ValueError(f"sweep.toggles lists a toggle twice: {list(self.toggles)}")
        clash = set(self.toggles) & set(self.fixed)
        if clash:
            raise ValueError(f"toggles {sorted(clash)} are both varied (sweep.toggles) and fixed (sweep.fixed)")
        for key, values in self.params.items():
            if not values:
                raise ValueError(f"sweep.params.{key} has no values")

    def cells(self, registry: Registry) -> list[Cell]:
        for name in self.toggles:
            registry.toggle(name)
        fixed_t = {k: bool(v) for k, v in self.fixed.items() if k in registry.toggles}
        fixed_p = {k: v for k, v in self.fixed.items() if k not in registry.toggles}
        if self.mode == "custom":
            return _dedupe_names(
                [self._custom_cell(i, c, registry, fixed_t, fixed_p) for i, c in enumerate(self.custom)]
            )
        if self.mode == "search":
            raise ValueError("sweep.mode=search proposes its cells while it runs (behavior_lab.sweep.search)")
        codes = {n: registry.toggle(n).code for n in self.toggles}
        if self.mode == "grid":
            bits = itertools.product((False, True), repeat=len(self.toggles))
            vectors = [dict(zip(self.toggles, b, strict=True)) for b in bits]
            named = [(_on_name(v, codes), v) for v in vectors]
        elif self.mode == "leave_one_out":
            full = dict.fromkeys(self.toggles, True)
            named = [("all", full)] + [(f"all-{codes[n]}", {**full, n: False}) for n in self.toggles]
        else:  # add_one_in
            base = dict.fromkeys(self.toggles, False)
            named = [("none", base)] + [(f"none+{codes[n]}", {**base, n: True}) for n in self.toggles]
        cells = []
        keys = list(self.params)
        for combo in itertools.product(*(self.params[k] for k in keys)):
            swept = dict(zip(keys, combo, strict=True))
            suffix = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in swept.items())
            for name, vec in named:
                full = (f"{name}[{suffix}]" if suffix else name) if self.toggles else (suffix or "default")
                cells.append(Cell(full, {**fixed_t, **vec}, {**fixed_p, **swept}))
        return cells

    def _custom_cell(self, i: int, node: Mapping, registry: Registry, fixed_t: dict, fixed_p: dict) -> Cell:
        unknown = set(node) - {"name", "toggles", "params"}
        if unknown:
            raise KeyError(f"sweep.cells[{i}] has keys {sorted(unknown)}; valid keys: name, toggles, params")
        toggles = {**fixed_t, **dict.fromkeys(self.toggles, False)}
        for n, v in (node.get("toggles") or {}).items():
            registry.toggle(n)
            toggles[n] = bool(v)
        params = {**fixed_p, **dict(node.get("params") or {})}
        codes = {n: registry.toggle(n).code for n in toggles}
        return Cell(str(node.get("name") or _on_name(toggles, codes)), toggles, params)


def _on_name(vector: Mapping[str, bool], codes: Mapping[str, str]) -> str:
    on = [codes[n] for n, v in vector.items() if v]
    return "+".join(on) if on else "none"


def _dedupe_names(cells: list[Cell]) -> list[Cell]:
    seen: dict[str, int] = {}
    out = []
    for c in cells:
        k = seen.get(c.name, 0)
        seen[c.name] = k + 1
        out.append(c if k == 0 else Cell(f"{c.name}#{k + 1}", c.toggles, c.params))
    return out


def design_from_cfg(node: Mapping[str, Any]) -> Design:
    """`sweep:` config node -> Design (errors name the key)."""
    known = {"mode", "toggles", "params", "fixed", "cells", "search"}
    unknown = set(node) - known
    if unknown:
        raise KeyError(f"unknown keys {sorted(unknown)} under sweep; valid keys: {', '.join(sorted(known))}")
    params = {str(k): tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in (node.get("params") or {}).items()}
    return Design(
        mode=str(node.get("mode", "grid")),
        toggles=tuple(str(t) for t in (node.get("toggles") or [])),
        params=params,
        fixed=dict(node.get("fixed") or {}),
        custom=tuple(node.get("cells") or []),
    )
