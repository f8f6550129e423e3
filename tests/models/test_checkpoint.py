"""pi05_base loading: a tiny random checkpoint written in openpi's PyTorch key layout."""

from __future__ import annotations

import torch
from safetensors.torch import save_file
from transformers import SiglipVisionConfig, SiglipVisionModel

from behavior_lab.models.checkpoint import load_pi05_base
from behavior_lab.models.config import VisionConfig
from behavior_lab.models.pi_behavior import PiBehavior

from .conftest import innovations, make_batch, micro_config

VIS = VisionConfig(kind="siglip", image_size=32, patch_size=16, width=32, depth=1, mlp_dim=64, num_heads=2)


def openpi_state_dict(cfg, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Keys as written by openpi's convert_jax_model_to_pytorch.py (models_pytorch/pi0_pytorch.py)."""
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    pg, ex = "paligemma_with_expert.paligemma.", "paligemma_with_expert.gemma_expert."
    sd = {}
    siglip = SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                  num_attention_heads=2, image_size=32, patch_size=16,
                                                  vision_use_head=False))
    for k, v in siglip.state_dict().items():  # transformers 4.53 (openpi) names: vision_tower.vision_model.*
        sd[pg + "model.vision_tower.vision_model." + k] = r(*v.shape)
    W, We, hd, H = cfg.vlm.width, cfg.expert.width, cfg.vlm.head_dim, cfg.vlm.num_heads
    sd[pg + "model.multi_modal_projector.linear.weight"] = r(W, 32)
    sd[pg + "model.multi_modal_projector.linear.bias"] = r(W)
    sd[pg + "model.language_model.embed_tokens.weight"] = r(cfg.vocab_size, W)
    sd[pg + "model.language_model.norm.weight"] = r(W)
    sd[pg + "lm_head.weight"] = r(cfg.vocab_size, W)
    sd[ex + "lm_head.weight"] = r(cfg.vocab_size, We)
    for base, w, mlp, ada in ((pg + "model.language_model.", W, cfg.vlm.mlp_dim, False), (ex + "model.", We, cfg.expert.mlp_dim, True)):
        for i in range(cfg.vlm.depth):
            p = f"{base}layers.{i}."
            sd[p + "self_attn.q_proj.weight"] = r(H * hd, w)
            sd[p + "self_attn.k_proj.weight"] = r(hd, w)
            sd[p + "self_attn.v_proj.weight"] = r(hd, w)
            sd[p + "self_attn.o_proj.weight"] = r(w, H * hd)
            sd[p + "mlp.gate_proj.weight"] = r(mlp, w)
            sd[p + "mlp.up_proj.weight"] = r(mlp, w)
            sd[p + "mlp.down_proj.weight"] = r(w, mlp)
            for norm in ("input_layernorm", "post_attention_layernorm"):
                if ada:
                    sd[p + f"{norm}.dense.weight"] = r(3 * w, w)
                    sd[p + f"{norm}.dense.bias"] = r(3 * w)
                else:
                    sd[p + f"{norm}.weight"] = r(w)
    sd[ex + "model.norm.dense.weight"] = r(3 * We, We)
    sd[ex + "model.norm.dense.bias"] = r(3 * We)
    for name, shape in (("action_in_proj", (We, 32)), ("action_out_proj", (32, We)),
                        ("time_mlp_in", (We, We)), ("time_mlp_out", (We, We))):
        sd[name + ".weight"], sd[name + ".bias"] = r(*shape), r(shape[0])
    return sd


def test_load_openpi_layout_reports_new_modules_as_missing(tmp_path):
    cfg = micro_config(vision=VIS)
    sd = openpi_state_dict(cfg, torch.Generator().manual_seed(0))
    sd["paligemma_with_expert.something_new.weight"] = torch.zeros(3)
    path = tmp_path / "model.safetensors"
    save_file(sd, str(path))

    model = PiBehavior(cfg, innovations("all"))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_pi05_base(model, tmp_path)  # a directory with *.safetensors
    own = model.state_dict()
    assert not report.mismatched
    assert report.unexpected == ["paligemma_with_expert.something_new.weight"]
    assert len(report.ignored) == 2  # the two LM heads
    assert all(k.startswith(("task.", "stage_tokens.", "stage_head.", "fast.", "kv_transform.")) for k in report.missing)
    assert {k.split(".")[0] for k in report.missing} == {"task", "stage_tokens", "stage_head", "fast", "kv_transform"}
    for k in report.missing:
        assert torch.equal(own[k], init[k])  # new modules keep their init
    pg = "paligemma_with_expert.paligemma.model."
    assert torch.equal(own["backbone.vlm.layers.1.mlp.up_proj.weight"], sd[pg + "language_model.layers.1.mlp.up_proj.weight"])
    assert torch.equal(own["backbone.expert.layers.0.input_layernorm.dense.bias"],
                       sd["paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.dense.bias"])
    assert torch.equal(own["vision.projector.weight"], sd[pg + "multi_modal_projector.linear.weight"])
    assert torch.equal(own["vision.tower.embeddings.patch_embedding.weight"],
                       sd[pg + "vision_tower.vision_model.embeddings.patch_embedding.weight"])
    assert len(report.loaded) == len(sd) - 3
    assert "missing" in report.summary()
    model.set_action_correlation(torch.eye(960))  # stats-derived, never in a checkpoint (spec §3.2)
    out = model.compute_loss(make_batch(B=2, image_size=32))
    assert out["loss"].isfinite()


def test_lerobot_prefix_and_own_layout_load():
    cfg = micro_config(vision=VIS)
    sd = openpi_state_dict(cfg, torch.Generator().manual_seed(1))
    model = PiBehavior(cfg, innovations(set()))
    report = load_pi05_base(model, {"model." + k: v for k, v in sd.items()})  # LeRobot wraps in `model.`
    assert not report.missing and not report.unexpected
    clone = PiBehavior(cfg, innovations(set()))
    again = load_pi05_base(clone, model.state_dict())  # our own layout passes through
    assert not again.missing and not again.unexpected


def test_tied_embedder_stored_only_as_lm_head_is_used():
    cfg = micro_config(vision=VIS)
    sd = openpi_state_dict(cfg, torch.Generator().manual_seed(2))
    del sd["paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"]
    model = PiBehavior(cfg, innovations(set()))
    report = load_pi05_base(model, sd)
    assert "backbone.vlm.embed_tokens.weight" in report.loaded and not report.missing
    assert torch.equal(model.backbone.vlm.embed_tokens.weight, sd["paligemma_with_expert.paligemma.lm_head.weight"])
