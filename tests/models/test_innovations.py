"""Each innovation: its off state is plain Pi0.5 / identity, and its on state does what spec says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from behavior_lab.innovations.correlated_noise import CorrelatedNoise, shrunk_cholesky
from behavior_lab.innovations.inpainting import (
    InpaintingConfig,
    Inpainter,
    InpaintPlan,
    correction_matrix,
    num_inpaint_steps,
)
from behavior_lab.innovations.kv_transform import KVCacheTransform
from behavior_lab.innovations.multi_sample_fm import sample_time
from behavior_lab.models.gemma_mot import PrefixCache
from behavior_lab.models.pi_behavior import PiBehavior

from .conftest import innovations, make_batch, micro_config, randomize_adarms


def _random_correlation_cholesky(n: int = 960, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 64, generator=g, dtype=torch.float64)
    cov = a @ a.T + 0.5 * torch.eye(n, dtype=torch.float64)
    d = cov.diagonal().rsqrt()
    return torch.linalg.cholesky(cov * d[:, None] * d[None, :]).float()  # unit diagonal, like spec §3.1


def test_identity_kv_transform_changes_nothing_bit_for_bit(batch):
    torch.manual_seed(0)
    cache = PrefixCache(torch.randn(2, 3, 1, 7, 8), torch.randn(2, 3, 1, 7, 8), torch.ones(3, 7, dtype=torch.bool))
    out = KVCacheTransform(depth=2, num_kv_heads=1, head_dim=8)(cache)
    assert torch.equal(out.keys, cache.keys) and torch.equal(out.values, cache.values)
    # whole model: kv_transform on (identity init) vs off, same weights and randomness -> same loss bits
    on = PiBehavior(micro_config(), innovations({"kv_transform", "system2", "task_embeddings"}))
    off = PiBehavior(micro_config(), innovations({"system2", "task_embeddings"}))
    off.load_state_dict(on.state_dict(), strict=False)
    randomize_adarms(on)
    randomize_adarms(off)
    noise, t = torch.randn(3, 30, 32), torch.rand(3)
    assert torch.equal(on.compute_loss(batch, noise, t)["loss"], off.compute_loss(batch, noise, t)["loss"])


def test_beta_zero_noise_has_identity_covariance():
    L = _random_correlation_cholesky()
    assert torch.equal(shrunk_cholesky(L, 0.0), torch.eye(960))
    noise = CorrelatedNoise(30, 32, beta=0.0)
    noise.set_cholesky(L)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(noise.sample((4, 30, 32), generator=g1), torch.randn(4, 960, generator=g2).reshape(4, 30, 32))
    # β = 0.5: empirical covariance approaches 0.5·LLᵀ + 0.5·I
    half = CorrelatedNoise(30, 32, beta=0.5)
    half.set_cholesky(L)
    x = half.sample((20000, 30, 32), generator=torch.Generator().manual_seed(0)).reshape(20000, 960)[:, :40].double()
    target = (0.5 * (L @ L.T) + 0.5 * torch.eye(960))[:40, :40].double()
    assert (x.T @ x / 20000 - target).abs().max() < 0.06


def test_correlated_noise_without_stats_says_how_to_load_them():
    with pytest.raises(RuntimeError, match="set_action_correlation"):
        CorrelatedNoise(30, 32, 0.5).sample((1, 30, 32))


def test_time_distribution_is_squashed_beta():
    t = sample_time((200_000,), 1.5, 1.0, 0.001, generator=torch.Generator().manual_seed(0))
    assert 0.001 <= float(t.min()) and float(t.max()) <= 1.0
    u = (t - 0.001) / 0.999
    assert abs(float(u.mean()) - 0.6) < 5e-3  # Beta(1.5, 1) mean = 1.5 / 2.5


def test_n_flow_samples_run_the_vlm_once(batch):
    model = PiBehavior(micro_config(), innovations("all", multi_sample_fm={"num_samples": 5}))
    model.set_action_correlation(_random_correlation_cholesky())
    calls = {"vlm": 0, "vision": 0, "expert": 0}
    model.backbone.vlm.layers[0].self_attn.q_proj.register_forward_hook(lambda *a: calls.__setitem__("vlm", calls["vlm"] + 1))
    model.vision.register_forward_hook(lambda *a: calls.__setitem__("vision", calls["vision"] + 1))
    model.backbone.expert.layers[0].self_attn.q_proj.register_forward_hook(
        lambda m, i, o: calls.__setitem__("expert", calls["expert"] + 1) or None
    )
    out = model.compute_loss(batch)
    assert calls == {"vlm": 1, "vision": 1, "expert": 1}  # N folded into one expert pass too
    assert out["loss"].isfinite()
    calls.update(vlm=0, vision=0, expert=0)
    model.sample_actions(batch, num_steps=4)
    assert calls == {"vlm": 1, "vision": 1, "expert": 4}  # one prefix pass, one expert pass per Euler step


def test_multi_sample_loss_is_the_mean_of_single_sample_losses(batch):
    torch.manual_seed(0)
    multi = PiBehavior(micro_config(), innovations({"multi_sample_fm"}, multi_sample_fm={"num_samples": 3})).eval()
    single = PiBehavior(micro_config(), innovations(set())).eval()
    single.load_state_dict(multi.state_dict())
    randomize_adarms(multi)
    randomize_adarms(single)
    noise, t = torch.randn(3, 3, 30, 32), torch.rand(3, 3)
    got = multi.compute_loss(batch, noise, t)["action_loss"]
    ref = torch.stack([single.compute_loss(batch, noise[:, n], t[:, n])["action_loss"] for n in range(3)]).mean()
    assert abs(float((got - ref).detach())) < 1e-5


def test_stage_head_cannot_see_the_stage_input(batch):
    model = PiBehavior(micro_config(), innovations({"system2", "task_embeddings"})).eval()
    randomize_adarms(model)
    other = dict(batch, stage=torch.tensor([4, 0, 2]))
    a, b = model.sample_actions(batch, num_steps=2, noise=torch.zeros(3, 30, 32)), model.sample_actions(
        other, num_steps=2, noise=torch.zeros(3, 30, 32))
    assert torch.equal(a["stage_logits"], b["stage_logits"])
    assert not torch.allclose(a["actions"], b["actions"])  # the stage input does reach the actions
    # logits of stages >= S_task are masked per task
    assert (a["stage_logits"][0, 5:] < -1e30).all() and (a["stage_logits"][2] > -1e30).all()


def test_off_state_has_no_stage_or_fast_outputs_and_text_prompts_work(batch):
    model = PiBehavior(micro_config(), innovations(set()))
    out = model.compute_loss(batch)
    assert set(out) == {"loss", "action_loss", "action_loss_per_dim"} and out["action_loss_per_dim"].shape == (23,)
    res = model.sample_actions(batch, num_steps=2)
    assert set(res) == {"actions"} and res["actions"].shape == (3, 30, 32)
    with pytest.raises(KeyError, match="prompt_tokens"):
        model.compute_loss({k: v for k, v in batch.items() if not k.startswith("prompt")})


def test_gradients_reach_every_parameter(batch):
    model = PiBehavior(micro_config(), innovations("all", multi_sample_fm={"num_samples": 2}))
    model.set_action_correlation(_random_correlation_cholesky())
    randomize_adarms(model)
    out = model.compute_loss(batch)
    out["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    new = ("task.", "stage_tokens.", "stage_head.", "fast.", "kv_transform.")
    zero = [n for n, p in model.named_parameters() if n.startswith(new) and float(p.grad.abs().sum()) == 0.0]
    assert not zero, zero
    assert {"stage_loss", "stage_acc", "fast_loss", "fast_acc"} <= set(out)


def test_inpainting_correction_matrix_matches_closed_form():
    L = _random_correlation_cholesky()
    beta, k, D = 0.5, 4, 32
    sigma = (beta * (L.double() @ L.double().T) + (1 - beta) * torch.eye(960, dtype=torch.float64)).numpy()
    o = k * D
    eps = 1e-6 * max(np.diag(sigma[:o, :o]).mean(), 1.0)
    ref = sigma[o:, :o] @ np.linalg.inv(sigma[:o, :o] + eps * np.eye(o))
    inp = Inpainter(InpaintingConfig(beta=beta), 30, 32)
    inp.set_cholesky(L)
    got = inp.correction(k, "cpu").double().numpy()
    assert got.shape == (832, 128) and np.abs(got - ref).max() < 1e-4
    assert torch.equal(correction_matrix(torch.eye(960), k, D), torch.zeros(832, 128))  # Σ = I ⇒ C = 0
    assert num_inpaint_steps(20, 0.3, "inclusive") == 14 and num_inpaint_steps(20, 0.3, "seed_float32") == 13


def test_inpaint_step_sets_kept_positions_and_respects_the_guard():
    B, k = 2, 4
    kept, z = torch.randn(B, k, 32), torch.randn(B, k, 32)
    x = torch.randn(B, 30, 32)
    corr = torch.full((26 * 32, k * 32), 1e-4)
    plan = InpaintPlan(kept, z, corr, active_steps=14, guard=1.0)
    y = plan.apply(x, step=3, t_next=0.85)
    target = 0.15 * kept + 0.85 * z
    torch.testing.assert_close(y[:, :k], target)
    delta_u = (target - x[:, :k]).reshape(B, -1) @ corr.T
    torch.testing.assert_close(y[:, k:], x[:, k:] + delta_u.reshape(B, 26, 32))
    big = InpaintPlan(kept, z, corr * 1e4, active_steps=14, guard=1.0)  # |δ_U| > guard: only the hard part
    assert torch.equal(big.apply(x, 3, 0.85)[:, k:], x[:, k:])
    assert torch.equal(plan.apply(x, step=15, t_next=0.25), x)  # past the inpainting window


def test_euler_sampler_integrates_constant_velocity_exactly(batch, monkeypatch):
    model = PiBehavior(micro_config(), innovations(set()))
    c = torch.randn(3, 30, 32)
    monkeypatch.setattr(model, "velocity", lambda cache, prefix, x, t: c[:, None].expand_as(x))
    x1 = torch.randn(3, 30, 32)
    out = model.sample_actions(batch, num_steps=20, noise=x1)["actions"]
    torch.testing.assert_close(out, x1 - c, atol=1e-5, rtol=0)
    # with inpainting and no correlation (C = 0) the kept actions are on the path at the last active step
    inp = model.sample_actions(batch, num_steps=20, noise=x1, initial_actions=torch.zeros(3, 4, 32))["actions"]
    torch.testing.assert_close(inp[:, 4:], (x1 - c)[:, 4:], atol=1e-5, rtol=0)


def test_fast_padding_columns_are_trimmed_exactly(batch):
    model = PiBehavior(micro_config(), innovations({"fast_aux", "task_embeddings"})).eval()
    noise, t = torch.randn(3, 30, 32), torch.rand(3)
    ref = model.compute_loss(batch, noise, t)
    padded = dict(batch, fast_tokens=torch.cat([batch["fast_tokens"], torch.zeros(3, 20, dtype=torch.long)], 1),
                  fast_mask=torch.cat([batch["fast_mask"], torch.zeros(3, 20, dtype=torch.bool)], 1))
    got = model.compute_loss(padded, noise, t)
    for k in ("fast_loss", "fast_acc", "action_loss"):
        torch.testing.assert_close(got[k], ref[k])
    assert 0.0 <= float(ref["fast_acc"]) <= 1.0


def test_knowledge_insulation_stops_action_gradients_into_the_vlm(batch):
    cfg = micro_config()
    model = PiBehavior(dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, knowledge_insulation=True)),
                       innovations({"kv_transform", "task_embeddings"}))
    randomize_adarms(model)
    model.compute_loss(batch)["loss"].backward()
    assert model.backbone.vlm.layers[0].self_attn.k_proj.weight.grad is None  # only the action loss here
    assert float(model.kv_transform.k_coeffs.grad.abs().sum()) > 0  # the transform still trains


def test_privileged_task_info_token_is_read_and_trained(batch):
    """DESIGN §8 lever 5: with task_info_dim > 0 the task_info vector becomes one prefix token that
    changes the predicted velocity and receives gradients; without it the model refuses the batch."""
    torch.manual_seed(0)
    model = PiBehavior(micro_config(task_info_dim=24), innovations(set()))
    randomize_adarms(model)
    B = batch["images"].shape[0]
    info = dict(batch, task_info=torch.randn(B, 24, generator=torch.Generator().manual_seed(3)))
    prefix = model.embed_prefix(info, with_fast=False)
    plain = PiBehavior(micro_config(), innovations(set())).embed_prefix(batch, with_fast=False)
    assert prefix.embeds.shape[1] == plain.embeds.shape[1] + 1  # exactly one extra token
    noise, t = torch.randn(B, 30, 32), torch.full((B,), 0.5)
    v1 = model.joint_velocity(info, noise, t)
    v2 = model.joint_velocity(dict(info, task_info=info["task_info"] + 1.0), noise, t)
    assert not torch.allclose(v1, v2)  # the action expert sees the token
    loss = model.compute_loss(info)["loss"]
    loss.backward()
    assert float(model.task_info_proj.weight.grad.abs().sum()) > 0
    with pytest.raises(KeyError, match="task_info"):
        model.embed_prefix(batch, with_fast=False)
    with pytest.raises(ValueError, match="width 7"):
        model.embed_prefix(dict(batch, task_info=torch.zeros(B, 7)), with_fast=False)


def test_gripper_loss_weight_scales_only_the_gripper_dims(batch):
    """model.flow.gripper_loss_weight (not in the seed): the action loss is the plain mean plus
    (w - 1) x the gripper dims' share; the logged per-dim losses stay unweighted."""
    cfg = micro_config()
    plain = PiBehavior(cfg, innovations(set())).eval()
    randomize_adarms(plain)
    heavy = PiBehavior(dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, gripper_loss_weight=5.0)),
                       innovations(set())).eval()
    heavy.load_state_dict(plain.state_dict())
    noise, t = torch.randn(3, 30, 32), torch.rand(3)
    a, b = plain.compute_loss(batch, noise, t), heavy.compute_loss(batch, noise, t)
    torch.testing.assert_close(a["action_loss_per_dim"], b["action_loss_per_dim"])
    grip = a["action_loss_per_dim"][[14, 22]].sum() / 32  # mean over all 32 (padded) dims
    torch.testing.assert_close(b["action_loss"], a["action_loss"] + 4.0 * grip, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="gripper_loss_weight"):
        dataclasses.replace(cfg.flow, gripper_loss_weight=0.0)
