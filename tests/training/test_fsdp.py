"""FSDP2 sharding by layer pair, on CPU with the gloo backend (one rank): the sharded model gives the
same loss and gradients as the plain one, and each layer index's VLM + expert blocks form ONE unit."""

from __future__ import annotations

import copy
import socket

import pytest
import torch
import torch.distributed as dist

from behavior_lab.cli.train import compose


@pytest.fixture
def gloo_world(monkeypatch):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_layer_pair_sharding_matches_unsharded(gloo_world, tmp_path):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule

    from behavior_lab.models.factory import build_model
    from behavior_lab.training.fsdp import find_layer_pairs, shard_layer_pairs

    cfg = compose(["data.root=/unused", f"out={tmp_path}", "model=small", "innovation/fast_aux=off",
                   "innovation/correlated_noise=off", "innovation.multi_sample_fm.num_samples=3"])
    torch.manual_seed(0)
    ref = build_model(cfg.model, cfg.innovation)
    sharded = shard_layer_pairs(copy.deepcopy(ref), mesh=init_device_mesh("cpu", (1,)))

    pairs = find_layer_pairs(sharded)
    assert len(pairs) == cfg.model.vlm.depth
    for vlm_block, expert_block in pairs:
        assert isinstance(vlm_block, FSDPModule) and isinstance(expert_block, FSDPModule)
        group = vlm_block._get_fsdp_state()._fsdp_param_group
        assert group is expert_block._get_fsdp_state()._fsdp_param_group  # one unit per pair
        assert {id(p) for p in vlm_block.parameters()} | {id(p) for p in expert_block.parameters()} == {
            id(fp.sharded_param) for fp in group.fsdp_params}

    B, size = 2, int(cfg.model.vision.image_size)
    g = torch.Generator().manual_seed(1)
    batch = {"images": torch.randint(0, 255, (B, 3, size, size, 3), dtype=torch.uint8, generator=g),
             "image_mask": torch.ones(B, 3, dtype=torch.bool), "state": torch.randn(B, 32, generator=g),
             "actions": torch.randn(B, 30, 32, generator=g), "task_id": torch.tensor([0, 1]),
             "stage": torch.tensor([0, 1]), "num_stages": torch.tensor([5, 5])}
    noise, t = torch.randn(B, 3, 30, 32, generator=g), torch.rand(B, 3, generator=g)
    l_ref = ref.compute_loss(batch, noise=noise, time=t)["loss"]
    l_fsdp = sharded.compute_loss(batch, noise=noise, time=t)["loss"]
    l_ref.backward()
    l_fsdp.backward()
    assert torch.allclose(l_ref, l_fsdp, atol=1e-6)
    ref_grads = dict(ref.named_parameters())
    for name, p in sharded.named_parameters():
        if p.grad is None:
            continue
        grad = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
        assert torch.allclose(grad, ref_grads[name].grad, atol=1e-6), name
