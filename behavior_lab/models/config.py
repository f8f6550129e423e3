"""Model-size configuration: the backbone, vision tower, state encoding and flow-matching knobs.

One small frozen dataclass per component (STYLE habit 1). Innovation settings live in their own
files under `behavior_lab/innovations/`; this file only holds what plain Pi0.5 needs.
Built from the composed Hydra `model` node by `ModelConfig.from_dict` (see `factory.build_model`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from behavior_lab.data import schema


@dataclasses.dataclass(frozen=True)
class ExpertConfig:
    """One Gemma expert of the mixture of transformers (spec §1.1 table)."""

    width: int
    depth: int
    mlp_dim: int
    num_heads: int = 8
    num_kv_heads: int = 1  # spec §1.1: MQA
    head_dim: int = 256
    rms_eps: float = 1e-6  # spec §1.1
    rope_theta: float = 10_000.0  # spec §1.1: max wavelength 10,000

    def __post_init__(self):
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}"
            )


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """Swappable vision tower (DESIGN §8 lever 1).

    kind="siglip": SigLIP ViT + linear projector (pi05 / GPU presets; spec §1.1).
    kind="keypoints": per-camera conv + spatial-softmax keypoints, `tokens_per_camera` tokens per
    camera (CPU `tiny` preset; learnability-measurements.md variant A').
    """

    kind: str = "siglip"
    image_size: int = 224
    # siglip
    width: int = 1152
    depth: int = 27
    mlp_dim: int = 4304
    num_heads: int = 16
    patch_size: int = 14
    # keypoints
    channels: tuple[int, ...] = (16, 32, 32)
    strides: tuple[int, ...] = (2, 2, 1)
    num_keypoints: int = 32
    tokens_per_camera: int = 1

    def __post_init__(self):
        if self.kind not in ("siglip", "keypoints"):
            raise ValueError(f"vision.kind={self.kind!r}; valid kinds: 'siglip', 'keypoints'")
        if len(self.channels) != len(self.strides):
            raise ValueError(f"vision.channels {self.channels} and vision.strides {self.strides} differ in length")
        if self.kind == "siglip" and self.image_size % self.patch_size:
            raise ValueError(f"vision.image_size={self.image_size} is not a multiple of patch_size={self.patch_size}")


@dataclasses.dataclass(frozen=True)
class StateConfig:
    """State encoding (spec §1.2): 256-bin discretisation into the VLM vocabulary, or one continuous token."""

    mode: str = "discrete"  # "discrete" | "continuous"
    num_bins: int = 256  # spec §1.2

    def __post_init__(self):
        if self.mode not in ("discrete", "continuous"):
            raise ValueError(f"state.mode={self.mode!r}; valid modes: 'discrete', 'continuous'")


@dataclasses.dataclass(frozen=True)
class FlowMatchingConfig:
    """Flow-matching loss knobs shared by plain Pi0.5 and the seed (spec §4.1, §15 item 5)."""

    time_alpha: float = 1.5  # spec §4.1: u ~ Beta(1.5, 1)
    time_beta: float = 1.0
    time_min: float = 0.001  # spec §4.1: t = 0.999·u + 0.001
    include_padded_dims: bool = True  # spec §14: the seed averages over all 32 dims
    knowledge_insulation: bool = False  # spec §4.1 step 4 / §15 item 8: stop action-loss gradients into the VLM
    num_steps: int = 20  # spec §4.2: Euler steps at inference
    # Not in the seed (1.0 = the seed's plain mean): weight of the two gripper dims (14, 22) in the
    # action loss, for policies whose open/close timing blurs (docs/status.md, session 8). The logged
    # (val/)action_loss includes the weight; the per-dim losses do not.
    gripper_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.gripper_loss_weight > 0:
            raise ValueError(f"model.flow.gripper_loss_weight={self.gripper_loss_weight}; expected > 0")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    vision: VisionConfig
    vlm: ExpertConfig
    expert: ExpertConfig
    vocab_size: int = 257_152  # spec §1.1: PaliGemma embedder
    state: StateConfig = StateConfig()
    flow: FlowMatchingConfig = FlowMatchingConfig()
    num_cameras: int = 3  # spec §1.2
    action_horizon: int = schema.ACTION_HORIZON
    action_dim: int = schema.PADDED_DIM
    num_tasks: int = schema.NUM_TASKS
    max_prompt_tokens: int = 48  # text conditioning (task_embeddings=off)
    # privileged observation mode (DESIGN §8 lever 5): width of `observation.task_info`, fed as one
    # Linear(D -> W) prefix token after the state tokens; 0 = off (the standard track: RGB + proprio)
    task_info_dim: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        v, e = self.vlm, self.expert
        if (v.depth, v.num_heads, v.num_kv_heads, v.head_dim) != (e.depth, e.num_heads, e.num_kv_heads, e.head_dim):
            raise ValueError(
                "vlm and expert must share depth, num_heads, num_kv_heads and head_dim for the joint "
                f"attention (spec §1.1); got vlm={v} expert={e}"
            )
        if self.task_info_dim < 0:
            raise ValueError(f"task_info_dim={self.task_info_dim}; expected 0 (off) or the task_info width")
        if self.state.mode == "discrete" and self.vocab_size < self.state.num_bins:
            raise ValueError(f"vocab_size={self.vocab_size} < state.num_bins={self.state.num_bins}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise KeyError(f"unknown model config keys {sorted(unknown)}; valid keys: {sorted(known)}")
        sub = {"vision": VisionConfig, "vlm": ExpertConfig, "expert": ExpertConfig,
               "state": StateConfig, "flow": FlowMatchingConfig}
        for key, kls in sub.items():
            if key in d and not isinstance(d[key], kls):
                d[key] = _build(kls, d[key], f"model.{key}")
        return cls(**d)


def _build(kls, node: Mapping[str, Any], where: str):
    node = dict(node)
    known = {f.name for f in dataclasses.fields(kls)}
    unknown = set(node) - known
    if unknown:
        raise KeyError(f"unknown keys {sorted(unknown)} in {where}; valid keys: {sorted(known)}")
    for f in dataclasses.fields(kls):
        if f.name in node and isinstance(node[f.name], list):
            node[f.name] = tuple(node[f.name])
    return kls(**node)


def build_dataclass(kls, node: Mapping[str, Any] | None, where: str):
    """Shared helper for the innovation configs: plain dict -> frozen dataclass, helpful errors."""
    return kls() if node is None else _build(kls, node, where)
