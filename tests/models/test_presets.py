"""Size presets and config composition: every preset that fits builds and runs; pi05 matches Pi0.5."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import behavior_lab
from behavior_lab.models.factory import build_model
from behavior_lab.models.innovation_config import MODEL_INNOVATIONS, InnovationConfig

from .conftest import innovations, make_batch

CONF = Path(behavior_lab.__file__).parent / "conf"


def preset(name: str) -> dict:
    return yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["tiny", "small"])
@pytest.mark.parametrize("on", ["all", "none"])
def test_preset_shapes(name, on):
    cfg = preset(name)
    inn = innovations("all" if on == "all" else set(), multi_sample_fm={"num_samples": 2})
    model = build_model(cfg, inn, correlation_cholesky=torch.eye(960))
    batch = make_batch(B=2, image_size=cfg["vision"]["image_size"])
    out = model.compute_loss(batch)
    assert out["loss"].shape == () and out["loss"].isfinite()
    res = model.sample_actions(batch, num_steps=2, initial_actions=torch.zeros(2, 4, 32))
    assert res["actions"].shape == (2, 30, 32)
    assert ("stage_logits" in res) == (on == "all")


def test_pi05_preset_has_pi05_sizes():
    model = build_model(preset("pi05"), InnovationConfig(), device="meta")
    n = lambda prefix: sum(p.numel() for k, p in model.named_parameters() if k.startswith(prefix))  # noqa: E731
    total = sum(p.numel() for p in model.parameters())
    assert model.backbone.vlm.embed_tokens.weight.shape == (257_152, 2048)
    assert model.vision.tokens_per_camera == 256
    assert 400e6 < n("vision.tower.") < 430e6  # SigLIP So400m/14
    assert 2.4e9 < n("backbone.vlm.") < 2.6e9  # Gemma-2B incl. its 527M-row embedder
    adarms = sum(p.numel() for k, p in model.named_parameters() if k.startswith("backbone.expert.") and ".dense." in k)
    assert 300e6 < n("backbone.expert.") - adarms < 320e6  # Gemma-300M (311M) + 117M of adaRMS modulation
    assert 3.3e9 < total < 3.4e9  # Pi0.5 ≈ 3.3B incl. the embedder (measured 3.353B)
    seed = build_model(preset("pi05"), InnovationConfig.all_on(), device="meta")
    new = sum(p.numel() for p in seed.parameters()) - total
    assert abs(new - 51.1e6) < 0.5e6  # spec §1.6: ~51.1M new parameters


def test_innovation_configs_compose_with_hydra():
    from hydra import compose, initialize_config_dir

    overrides = ["+model=tiny"] + [f"+innovation/{n}={s}" for n in MODEL_INNOVATIONS for s in ["on"]]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        on = compose(overrides=overrides)
        off = compose(overrides=[o.replace("=on", "=off") for o in overrides])
    model_on = build_model(on.model, on.innovation)
    assert model_on.innovations == InnovationConfig.all_on()
    assert model_on.num_samples == 15
    model_off = build_model(off.model, off.innovation)
    assert model_off.innovations == InnovationConfig()
    assert not any(k.startswith(("fast.", "kv_transform.", "stage_", "task.")) for k in model_off.state_dict())


def test_unknown_config_keys_fail_helpfully():
    with pytest.raises(KeyError, match="valid keys"):
        build_model(dict(preset("tiny"), widht=3))
    with pytest.raises(KeyError, match="innovation.system2"):
        InnovationConfig.from_dict({"system2": {"enabled": True, "los_weight": 0.1}})


def test_bfloat16_model_runs_with_fp32_attention_and_loss():
    from behavior_lab.models.pi_behavior import PiBehavior

    from .conftest import micro_config

    model = PiBehavior(micro_config(dtype="bfloat16"), innovations("all", multi_sample_fm={"num_samples": 2}))
    model.set_action_correlation(torch.eye(960))
    model.to(torch.bfloat16)
    assert model.noise.chol_beta.dtype == torch.float32 and model.inpainter.sigma.dtype == torch.float32
    batch = make_batch(B=2)
    out = model.compute_loss(batch)
    assert out["loss"].dtype == torch.float32 and out["loss"].isfinite()
    out["loss"].backward()
    res = model.sample_actions(batch, num_steps=2, initial_actions=torch.zeros(2, 4, 32))
    assert res["actions"].isfinite().all() and res["stage_logits"].shape == (2, 15)


def test_byte_tokenizer_round_trip_fits_the_tiny_vocab():
    from behavior_lab.models.tokenizer import ByteTokenizer

    tok = ByteTokenizer(max_len=48)
    tokens, mask = tok.encode(["turning_on_radio", "x" * 100])
    assert tokens.shape == (2, 48) and mask[0].sum() == len("turning on radio") and mask[1].all()
    assert tok.decode(tokens[0], mask[0]) == "turning on radio"
    assert tokens.max() < preset("tiny")["vocab_size"] and tokens[mask].min() >= 256  # clear of the state bins


def test_micro_model_fits_one_batch_with_all_innovations():
    """Sanity of the whole training path: 60 AdamW steps on one batch memorise the stage and FAST
    targets and cut the action loss (bounded by the micro expert's 16-wide bottleneck)."""
    from behavior_lab.models.pi_behavior import PiBehavior

    from .conftest import micro_config

    torch.manual_seed(0)
    model = PiBehavior(micro_config(), innovations("all", multi_sample_fm={"num_samples": 2}))
    model.set_action_correlation(torch.eye(960))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = make_batch(B=4)
    g = torch.Generator().manual_seed(0)
    noise, t = torch.randn(4, 2, 30, 32, generator=g), torch.rand(4, 2, generator=g)
    first = {k: float(v.detach()) for k, v in model.compute_loss(batch, noise, t).items() if v.dim() == 0}
    for _ in range(60):
        loss = model.compute_loss(batch, noise, t)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = {k: float(v.detach()) for k, v in model.compute_loss(batch, noise, t).items() if v.dim() == 0}
    assert last["action_loss"] < 0.8 * first["action_loss"], (first, last)
    assert last["stage_loss"] < 0.1 * first["stage_loss"] and last["fast_loss"] < 0.1 * first["fast_loss"], (first, last)
