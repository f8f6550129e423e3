"""Mixture of transformers, prefix layout and the cache: parity and masking properties."""

from __future__ import annotations

import torch

from behavior_lab.models.gemma_mot import AdaRMSNorm, RMSNorm
from behavior_lab.models.pi_behavior import PiBehavior
from behavior_lab.models.prefix import discretize_state, make_attn_mask

from .conftest import innovations, make_batch, micro_config, randomize_adarms


def test_attn_mask_groups_follow_cumsum_rule():
    # images(2) task(1) | stage(2: ar 1,0) state(2) | fast(2: ar 1,1), last fast padded
    ar = torch.tensor([0, 0, 0, 1, 0, 0, 0, 1, 1])
    valid = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    m = make_attn_mask(valid, ar)[0]
    assert m[:3, :3].all() and not m[:3, 3:].any()  # group 0 sees only itself
    assert m[3:7, :7].all() and not m[3:7, 7:].any()  # group 1 sees 0 and 1, never FAST
    assert m[7, :8].all() and not m[7, 8]  # FAST causal; padded key masked
    assert not m[8].any()  # padded query sees nothing (finite mask -> uniform softmax, no NaN)


def test_state_discretisation_matches_spec_bins():
    x = torch.tensor([-2.0, -1.0, -0.999, 0.0, 0.5, 0.9999, 1.0, 3.0])
    assert discretize_state(x).tolist() == [0, 0, 0, 128, 192, 255, 255, 255]


def test_adarms_zero_init_is_plain_rmsnorm_with_zero_gate():
    torch.manual_seed(0)
    x, cond = torch.randn(2, 5, 16), torch.randn(2, 7)
    y, gate = AdaRMSNorm(16, 7)(x, cond)
    ref, _ = RMSNorm(16)(x)
    torch.testing.assert_close(y, ref)
    assert torch.equal(gate, torch.zeros_like(gate))


def test_cached_inference_equals_joint_pass():
    torch.manual_seed(0)
    for task_on in (True, False):  # text prompts exercise padded prefix tokens and positions
        on = {"system2", "task_embeddings", "kv_transform"} if task_on else {"system2"}
        model = PiBehavior(micro_config(), innovations(on)).eval()
        randomize_adarms(model)
        batch = make_batch()
        B = batch["images"].shape[0]
        x_t, t = torch.randn(B, 30, 32), torch.tensor([0.9, 0.4, 0.05])
        ref = model.joint_velocity(batch, x_t, t)
        prefix, _, cache = model.encode_prefix(batch, with_fast=False)
        got = model.velocity(model.kv_transform(cache), prefix, x_t[:, None], t[:, None])[:, 0]
        assert (got - ref).abs().max() <= 1e-5


def test_fast_tokens_leave_the_nonfast_cache_unchanged():
    torch.manual_seed(0)
    on_model = PiBehavior(micro_config(), innovations("all")).eval()
    off_model = PiBehavior(micro_config(), innovations({"task_embeddings", "system2", "kv_transform"})).eval()
    missing, unexpected = off_model.load_state_dict(on_model.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("fast.") for k in unexpected)
    batch = make_batch()
    with torch.no_grad():
        p_on, out_on, c_on = on_model.encode_prefix(batch, with_fast=True)
        p_off, out_off, c_off = off_model.encode_prefix(batch, with_fast=True)  # FAST off: none appended
    assert p_on.embeds.shape[1] > p_off.embeds.shape[1] == p_on.nonfast_len
    torch.testing.assert_close(c_on.keys, c_off.keys, atol=1e-6, rtol=0)
    torch.testing.assert_close(c_on.values, c_off.values, atol=1e-6, rtol=0)
    torch.testing.assert_close(out_on[:, : p_on.nonfast_len], out_off, atol=1e-6, rtol=0)
