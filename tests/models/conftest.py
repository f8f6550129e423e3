"""Shared fixtures for the model tests: a micro config (faster than the `tiny` preset) and batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from behavior_lab.models.config import ExpertConfig, ModelConfig, VisionConfig
from behavior_lab.models.innovation_config import MODEL_INNOVATIONS, InnovationConfig

torch.set_num_threads(2)


def micro_config(**kw) -> ModelConfig:
    base = dict(
        name="micro",
        vision=VisionConfig(kind="keypoints", image_size=32, channels=(8, 8), strides=(2, 2), num_keypoints=8),
        vlm=ExpertConfig(width=32, depth=2, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=8),
        expert=ExpertConfig(width=16, depth=2, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8),
        vocab_size=520,
    )
    base.update(kw)
    return ModelConfig(**base)


def innovations(on: set[str] | str = "all", **overrides) -> InnovationConfig:
    names = set(MODEL_INNOVATIONS) if on == "all" else set(on)
    kw = {n: MODEL_INNOVATIONS[n](enabled=n in names) for n in MODEL_INNOVATIONS}
    for name, params in overrides.items():
        kw[name] = dataclasses.replace(kw[name], **params)
    return InnovationConfig(**kw)


def make_batch(B: int = 3, image_size: int = 32, seed: int = 0, fast_len: int = 12, prompt_len: int = 6) -> dict:
    g = torch.Generator().manual_seed(seed)
    fast_mask = torch.arange(fast_len)[None] < torch.tensor([fast_len, fast_len // 2, 3][:B] + [fast_len] * max(0, B - 3))[:, None]
    prompt_mask = torch.arange(prompt_len)[None] < torch.tensor([prompt_len, 3, 4][:B] + [prompt_len] * max(0, B - 3))[:, None]
    return dict(
        images=torch.randint(0, 256, (B, 3, image_size, image_size, 3), generator=g, dtype=torch.uint8),
        image_mask=torch.ones(B, 3, dtype=torch.bool),
        state=torch.randn(B, 32, generator=g) * 0.5,
        actions=torch.randn(B, 30, 32, generator=g),
        action_is_pad=torch.zeros(B, 30, dtype=torch.bool),
        task_id=torch.tensor([0, 5, 49, 7, 3, 2][:B]),
        stage=torch.tensor([1, 3, 10, 0, 2, 1][:B]),
        num_stages=torch.tensor([5, 12, 15, 15, 15, 15][:B]),
        fast_tokens=torch.randint(0, 1024, (B, fast_len), generator=g) * fast_mask,
        fast_mask=fast_mask,
        prompt_tokens=torch.randint(256, 512, (B, prompt_len), generator=g) * prompt_mask,
        prompt_mask=prompt_mask,
    )


def randomize_adarms(model: torch.nn.Module, seed: int = 1) -> None:
    """Open the zero-initialised adaRMS gates, as after loading pi05_base, so the expert matters."""
    from behavior_lab.models.gemma_mot import AdaRMSNorm

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, AdaRMSNorm):
                m.dense.bias.copy_(torch.randn(m.dense.bias.shape, generator=g) * 0.5)
                m.dense.weight.copy_(torch.randn(m.dense.weight.shape, generator=g) * 0.05)


@pytest.fixture
def batch():
    return make_batch()
