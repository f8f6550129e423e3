"""The model-side innovation settings, one dataclass per innovation (DESIGN §4).

Built from the composed Hydra `innovation` node: `innovation.<name>.enabled` plus that innovation's
hyperparameters. An absent node means "off" (plain Pi0.5). Nodes for runtime-only innovations
(`spline_speedup`, `gripper_corrections`) are ignored here; from `inpainting` only the sampler's
keys are read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from behavior_lab.innovations.correlated_noise import CorrelatedNoiseConfig
from behavior_lab.innovations.fast_aux import FastAuxConfig
from behavior_lab.innovations.inpainting import InpaintingConfig
from behavior_lab.innovations.kv_transform import KVTransformConfig
from behavior_lab.innovations.multi_sample_fm import MultiSampleFMConfig
from behavior_lab.innovations.system2 import System2Config
from behavior_lab.innovations.task_conditioning import TaskEmbeddingsConfig
from behavior_lab.models.config import build_dataclass

MODEL_INNOVATIONS = {
    "task_embeddings": TaskEmbeddingsConfig,
    "correlated_noise": CorrelatedNoiseConfig,
    "multi_sample_fm": MultiSampleFMConfig,
    "kv_transform": KVTransformConfig,
    "system2": System2Config,
    "fast_aux": FastAuxConfig,
}


@dataclasses.dataclass(frozen=True)
class InnovationConfig:
    task_embeddings: TaskEmbeddingsConfig = TaskEmbeddingsConfig()
    correlated_noise: CorrelatedNoiseConfig = CorrelatedNoiseConfig()
    multi_sample_fm: MultiSampleFMConfig = MultiSampleFMConfig()
    kv_transform: KVTransformConfig = KVTransformConfig()
    system2: System2Config = System2Config()
    fast_aux: FastAuxConfig = FastAuxConfig()
    inpainting: InpaintingConfig = InpaintingConfig()

    @classmethod
    def from_dict(cls, node: Mapping[str, Any] | None) -> InnovationConfig:
        node = dict(node or {})
        kw = {}
        for name, kls in MODEL_INNOVATIONS.items():
            if node.get(name) is not None:
                kw[name] = build_dataclass(kls, node[name], f"innovation.{name}")
        if node.get("inpainting") is not None:  # shared with the policy runtime: take the sampler's keys only
            known = {f.name for f in dataclasses.fields(InpaintingConfig)}
            kw["inpainting"] = build_dataclass(
                InpaintingConfig, {k: v for k, v in dict(node["inpainting"]).items() if k in known}, "innovation.inpainting"
            )
        return cls(**kw)

    @classmethod
    def all_on(cls) -> InnovationConfig:
        """The seed's training configuration (spec §15 defaults)."""
        return cls(**{name: kls(enabled=True) for name, kls in MODEL_INNOVATIONS.items()})
