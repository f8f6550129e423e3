"""Settings of the inference runtime: one small frozen dataclass per component.

Each inference-time innovation of the seed (DESIGN §4) is one switch here, with its own
hyperparameters; `enabled=False` makes its component the identity:

- `spline`     cubic-spline speed-up, 26 actions in 20 steps (spec §10)       -> execute 1:1
- `gate`       gripper-variation gate on the speed-up (spec §10 step 1)      -> always compress
- `inpainting` kept actions for soft inpainting of the next chunk (spec §9.1) -> no kept actions
- `voting`     stage voting over replans (spec §6.4)                         -> stage stays put
- `corrections` gripper correction rules + radio rule (spec §11)             -> chunk unchanged

`RuntimeConfig.from_cfg` reads the packaged `conf/policy/default.yaml` layout (a `policy:` node)
and, when present, the `innovation.<name>.enabled` switches of DESIGN §4, which win.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from behavior_lab.data import schema

VOTING_MODES = ("vote", "argmax", "fixed", "oracle")


@dataclasses.dataclass(frozen=True)
class ReplanConfig:
    # spec §10 / §13.5: the model runs every `execute_in_n_steps` env steps (20 at 30 Hz).
    execute_in_n_steps: int = 20
    horizon: int = schema.ACTION_HORIZON  # spec §1.3: H = 30

    def __post_init__(self) -> None:
        if not 1 <= self.execute_in_n_steps <= self.horizon:
            raise ValueError(
                f"policy.replan.execute_in_n_steps={self.execute_in_n_steps} must be in 1..{self.horizon} "
                "(the action horizon)"
            )


@dataclasses.dataclass(frozen=True)
class SplineConfig:
    # spec §10: `actions_to_execute = 26` played back in `execute_in_n_steps = 20` steps.
    enabled: bool = True
    actions_to_execute: int = 26
    velocity_rescale: bool = True  # spec §10: base dims 0-2 x actions_to_execute / execute_in_n_steps
    kind: str = "cubic"  # spec §10: scipy interp1d(kind="cubic"), not-a-knot ends

    def __post_init__(self) -> None:
        if self.kind not in ("cubic", "linear"):
            raise ValueError(f"policy.spline.kind={self.kind!r}; expected 'cubic' or 'linear'")
        if self.actions_to_execute < 4 and self.kind == "cubic":
            raise ValueError("policy.spline.actions_to_execute must be >= 4 for a cubic spline")


@dataclasses.dataclass(frozen=True)
class GateConfig:
    # spec §10 step 1 / §11: correction_rules.GRIPPER_VARIATION_THRESHOLD = 0.2 ([-1, 1] units)
    enabled: bool = True
    threshold: float = 0.2


@dataclasses.dataclass(frozen=True)
class InpaintingConfig:
    # spec §9.1 / §13.5: `actions_to_keep = 4`
    enabled: bool = True
    actions_to_keep: int = 4

    def __post_init__(self) -> None:
        if self.enabled and self.actions_to_keep < 1:
            raise ValueError("policy.inpainting.actions_to_keep must be >= 1 when inpainting is on")


@dataclasses.dataclass(frozen=True)
class VotingConfig:
    """Stage tracking at inference (spec §6.4, §15 item 3).

    mode: "vote" (the seed's voting + jump filter), "argmax" (raw prediction each replan),
    "fixed" (stage stays at `fixed_stage`), "oracle" (read the stage from obs[`oracle_key`]).
    """

    enabled: bool = True
    mode: str = "vote"
    history_len: int = 3  # spec §6.4 default
    votes_to_promote: int = 2  # spec §6.4 default
    allow_skip: bool = True  # spec §6.4: all `history_len` votes for n+1 advance by one
    allow_back: bool = True  # spec §6.4: all votes for current-1 go back by one
    fixed_stage: int = 0
    oracle_key: str = "stage"

    def __post_init__(self) -> None:
        if self.mode not in VOTING_MODES:
            raise ValueError(f"policy.voting.mode={self.mode!r}; valid modes: {', '.join(VOTING_MODES)}")
        if self.history_len < 1 or not 1 <= self.votes_to_promote <= self.history_len:
            raise ValueError(
                f"policy.voting: need history_len >= 1 and 1 <= votes_to_promote <= history_len "
                f"(got {self.history_len}, {self.votes_to_promote})"
            )


@dataclasses.dataclass(frozen=True)
class GripperLatchConfig:
    """Not in the seed (off by default): send each gripper as a latched +-1 with hysteresis.

    The sent command becomes -1 (close) once the planned value drops below -threshold, +1 (open)
    once it rises above +threshold, and otherwise repeats what was sent before (+1 at an episode's
    start). A policy whose gripper output hovers near 0 then neither flickers open and shut nor
    drops what it carries when the value drifts just above 0 (assisted grasp releases at > 0).
    Only what reaches the environment changes; inpainting keeps the raw chunk.
    """

    enabled: bool = False
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"policy.gripper_latch.threshold={self.threshold}; expected 0 <= threshold < 1")


# --- seed tables (spec §11.1; src/b1k/shared/correction_rules.py) ---------------------------------
# Left gripper must never stay closed: every task except 0, 41, 46, 49.
SEED_ALWAYS_OPEN_LEFT = tuple(t for t in range(schema.NUM_TASKS) if t not in (0, 41, 46, 49))
# Right gripper: {1-29, 34-37, 42-44, 47-49}.
SEED_ALWAYS_OPEN_RIGHT = tuple(
    list(range(1, 30)) + list(range(34, 38)) + list(range(42, 45)) + list(range(47, 50))
)
SEED_RIGHT_NEVER_CORRECTED = (38, 39)  # spraying tasks hold the sprayer closed
SEED_MIN_STAGE_FOR_CLOSURE = {
    0: {"left": 2, "right": 2},
    30: {"right": 6},
    31: {"right": 8},
    32: {"right": 5},
    33: {"right": 11},
    40: {"right": 4},
    41: {"left": 14, "right": 14},
    45: {"right": 10},
    46: {"left": 8, "right": 8},
    49: {"left": 14},
}


@dataclasses.dataclass(frozen=True)
class CorrectionsConfig:
    enabled: bool = True
    general_rule: bool = True
    radio_rule: bool = True  # spec §11.2, task 0 only
    closed_threshold: float = -0.98  # spec §11: g < -0.98 is "closed"
    open_threshold: float = 0.90  # spec §11: g > 0.90 is "open"
    open_value: float = 1.0  # spec §11.1: offending gripper set to 1.0
    always_open_left: tuple[int, ...] = SEED_ALWAYS_OPEN_LEFT
    always_open_right: tuple[int, ...] = SEED_ALWAYS_OPEN_RIGHT
    right_never_corrected: tuple[int, ...] = SEED_RIGHT_NEVER_CORRECTED
    min_stage_for_closure: Mapping[int, Mapping[str, int]] = dataclasses.field(
        default_factory=lambda: dict(SEED_MIN_STAGE_FOR_CLOSURE)
    )

    def __post_init__(self) -> None:
        for task, rule in self.min_stage_for_closure.items():
            bad = set(rule) - {"left", "right"}
            if bad:
                raise ValueError(
                    f"policy.corrections.min_stage_for_closure[{task}] has keys {sorted(bad)}; "
                    "only 'left' and 'right' are allowed"
                )


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    replan: ReplanConfig = dataclasses.field(default_factory=ReplanConfig)
    spline: SplineConfig = dataclasses.field(default_factory=SplineConfig)
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    inpainting: InpaintingConfig = dataclasses.field(default_factory=InpaintingConfig)
    voting: VotingConfig = dataclasses.field(default_factory=VotingConfig)
    corrections: CorrectionsConfig = dataclasses.field(default_factory=CorrectionsConfig)
    gripper_latch: GripperLatchConfig = dataclasses.field(default_factory=GripperLatchConfig)
    num_steps: int = 20  # spec §13.5: flow-matching Euler steps
    # Task used when an observation carries no `task_id` (None: such an observation is an error).
    default_task_id: int | None = None
    # One model call per replanning env instead of one batched call: batched matrix products round
    # differently with the batch size (~1e-7), which closed-loop contact dynamics amplify, so with
    # this on an episode plays bit-identically whatever envs share its steps (num_envs, resume).
    batch_invariant: bool = False

    def __post_init__(self) -> None:
        H = self.replan.horizon
        executed = self.executed_actions(compressed=self.spline.enabled)
        keep = self.inpainting.actions_to_keep if self.inpainting.enabled else 0
        # spec §10: the seed requires execute + keep <= horizon.
        if executed + keep > H:
            raise ValueError(
                f"policy: {executed} executed + {keep} kept actions exceed the horizon {H}; "
                "lower policy.spline.actions_to_execute or policy.inpainting.actions_to_keep"
            )
        if self.spline.enabled and self.spline.actions_to_execute < self.replan.execute_in_n_steps:
            raise ValueError(
                f"policy.spline.actions_to_execute={self.spline.actions_to_execute} is below "
                f"policy.replan.execute_in_n_steps={self.replan.execute_in_n_steps}; the speed-up "
                "compresses more actions into fewer steps"
            )

    def executed_actions(self, compressed: bool) -> int:
        """How many chunk actions one plan consumes (spec §10: 26 compressed, else 20)."""
        return self.spline.actions_to_execute if compressed else self.replan.execute_in_n_steps

    @classmethod
    def from_cfg(cls, cfg: Any | None, explicit: Sequence[str] | None = None) -> "RuntimeConfig":
        """Build from a (Dict)Config holding a `policy:` node and optional `innovation:` switches.

        `explicit`: the command line's overrides (default: Hydra's, when a Hydra app is running).
        An explicit `policy.<section>.<key>=v` that an `innovation.*` key of the same config
        overrides with another value is an error naming the key to use instead — never ignored.
        """
        if cfg is None:
            return cls()
        if isinstance(cfg, RuntimeConfig):
            return cfg
        root = _to_dict(cfg)
        node = dict(root.get("policy", root if "replan" in root or "spline" in root else {}))
        _check_shadowed(explicit if explicit is not None else hydra_overrides(), node,
                        root.get("innovation") or {})
        sections = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in node.items():
            if name not in sections:
                raise KeyError(f"unknown key policy.{name}; valid keys: {', '.join(sections)}")
            kwargs[name] = value
        # DESIGN §4: `innovation/<name>=on|off` is the switch; its runtime keys win over `policy.*`.
        for section, values in _innovation_overrides(root.get("innovation") or {}).items():
            kwargs[section] = {**dict(kwargs.get(section) or {}), **values}
        built: dict[str, Any] = {}
        for name, value in kwargs.items():
            sub_cls = _SECTION_TYPES.get(name)
            if sub_cls is not None and isinstance(value, Mapping):
                built[name] = _build(sub_cls, value, f"policy.{name}")
            else:
                built[name] = value
        return cls(**built)


def hydra_overrides() -> list[str]:
    """The running Hydra app's command-line overrides ([] outside one)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):  # ValueError: HydraConfig was not initialized
        return []


def _check_shadowed(explicit: Sequence[str], policy: Mapping[str, Any], innovation: Mapping[str, Any]) -> None:
    sources: dict[tuple[str, str], str] = {}
    decided = _innovation_overrides(innovation, sources)
    for item in explicit:
        path = item.split("=", 1)[0].lstrip("+~")
        parts = path.split(".")
        if len(parts) != 3 or parts[0] != "policy":
            continue
        section, key = parts[1], parts[2]
        if key not in decided.get(section, {}):
            continue
        wanted, kept = (policy.get(section) or {}).get(key), decided[section][key]
        if wanted != kept:
            src = sources[(section, key)]
            shown = str(kept).lower() if isinstance(kept, bool) else kept
            raise ValueError(
                f"{item}: this runtime key is decided by {src}={shown} here (the innovation switch wins, "
                f"DESIGN §4), so the override would be ignored; set {src} instead"
                + (f" (e.g. innovation/{src.split('.')[1]}=off)" if key == "enabled" and wanted is False else "")
            )


def _innovation_overrides(innovation: Mapping[str, Any],
                          sources: dict[tuple[str, str], str] | None = None) -> dict[str, dict[str, Any]]:
    """Runtime keys found in the `innovation.<name>` nodes, sorted into RuntimeConfig sections.

    spline_speedup -> spline (+ replan.execute_in_n_steps, gate.* as gate_enabled / gate_threshold);
    inpainting -> inpainting (the sampler keys stay with the model); gripper_corrections ->
    corrections; system2 -> voting (system2 off = no stage head, so voting off).
    """
    out: dict[str, dict[str, Any]] = {}
    sources = {} if sources is None else sources

    def put(section: str, key: str, value: Any, source: str) -> None:
        out.setdefault(section, {})[key] = value
        sources[(section, key)] = f"innovation.{source}"

    def fields(section: str) -> set[str]:
        return {f.name for f in dataclasses.fields(_SECTION_TYPES[section])}

    for name, section in (("spline_speedup", "spline"), ("inpainting", "inpainting"), ("gripper_corrections", "corrections")):
        node = innovation.get(name)
        if not isinstance(node, Mapping):
            continue
        for key, value in node.items():
            if key in fields(section):
                put(section, key, value, f"{name}.{key}")
            elif name == "spline_speedup" and key == "execute_in_n_steps":
                put("replan", key, value, f"{name}.{key}")
            elif name == "spline_speedup" and key in ("gate_enabled", "gate_threshold"):
                put("gate", key.removeprefix("gate_"), value, f"{name}.{key}")
    s2 = innovation.get("system2")
    if isinstance(s2, Mapping):
        for key, value in s2.items():
            if key in fields("voting") and key != "enabled":
                put("voting", key, value, f"system2.{key}")
        if "enabled" in s2 and not s2["enabled"]:
            put("voting", "enabled", False, "system2.enabled")
    return out


_SECTION_TYPES = {
    "replan": ReplanConfig,
    "spline": SplineConfig,
    "gate": GateConfig,
    "inpainting": InpaintingConfig,
    "voting": VotingConfig,
    "corrections": CorrectionsConfig,
    "gripper_latch": GripperLatchConfig,
}


def _build(sub_cls: type, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(sub_cls)}
    unknown = set(values) - names
    if unknown:
        raise KeyError(f"unknown key(s) {sorted(unknown)} under {where}; valid keys: {', '.join(sorted(names))}")
    kwargs = dict(values)
    for key in ("always_open_left", "always_open_right", "right_never_corrected"):
        if key in kwargs and kwargs[key] is not None:
            kwargs[key] = tuple(int(t) for t in kwargs[key])
    if "min_stage_for_closure" in kwargs and kwargs["min_stage_for_closure"] is not None:
        kwargs["min_stage_for_closure"] = {
            int(t): {str(k): int(v) for k, v in dict(rule).items()}
            for t, rule in dict(kwargs["min_stage_for_closure"]).items()
        }
    return sub_cls(**kwargs)


def _to_dict(cfg: Any) -> dict[str, Any]:
    if isinstance(cfg, Mapping) and not hasattr(cfg, "_metadata"):
        return {k: (_to_dict(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}
    try:
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception as exc:  # pragma: no cover - defensive
        raise TypeError(f"cannot read runtime settings from {type(cfg).__name__}: {exc}") from exc
