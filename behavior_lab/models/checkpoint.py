"""Load a local pi05_base PyTorch checkpoint into PiBehavior (spec §12.2).

Key layout: openpi's `examples/convert_jax_model_to_pytorch.py` output (models_pytorch/pi0_pytorch.py:
`paligemma_with_expert.paligemma.model.{vision_tower,multi_modal_projector,language_model}.*`,
`paligemma_with_expert.gemma_expert.model.*`, `action_{in,out}_proj`, `time_mlp_{in,out}`; SigLIP
under transformers-4.x's `vision_tower.vision_model.*`), the same
with LeRobot's leading `model.` (lerobot policies/pi05 safetensors), and the older transformers-4.4x
PaliGemma names (`paligemma.language_model.model.*`, `paligemma.vision_tower.*`). Keys already in our
own layout load as is (fine-tuning from a PiBehavior checkpoint). New modules (task embeddings, stage
tokens/head, FAST, KV transform) keep their init; the report lists them as `missing`.
Nothing is downloaded: `path` is a local file or directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

# (checkpoint prefix, our prefix), first match wins
# transformers 4.x SiglipVisionModel nests everything under `vision_model.`; 5.x does not.
KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("paligemma_with_expert.paligemma.model.vision_tower.vision_model.", "vision.tower."),
    ("paligemma_with_expert.paligemma.vision_tower.vision_model.", "vision.tower."),
    ("paligemma_with_expert.paligemma.model.vision_tower.", "vision.tower."),
    ("paligemma_with_expert.paligemma.vision_tower.", "vision.tower."),
    ("paligemma_with_expert.paligemma.model.multi_modal_projector.linear.", "vision.projector."),
    ("paligemma_with_expert.paligemma.multi_modal_projector.linear.", "vision.projector."),
    ("paligemma_with_expert.paligemma.model.language_model.", "backbone.vlm."),
    ("paligemma_with_expert.paligemma.language_model.model.", "backbone.vlm."),
    ("paligemma_with_expert.paligemma.language_model.", "backbone.vlm."),
    ("paligemma_with_expert.gemma_expert.model.", "backbone.expert."),
    ("action_in_proj.", "action_in_proj."),
    ("action_out_proj.", "action_out_proj."),
    ("time_mlp_in.", "time_mlp_in."),
    ("time_mlp_out.", "time_mlp_out."),
)
# Present in pi05_base but unused by a flow-matching policy (the LM heads are tied/unused).
IGNORED_PREFIXES = (
    "paligemma_with_expert.paligemma.lm_head.",
    "paligemma_with_expert.paligemma.language_model.lm_head.",
    "paligemma_with_expert.gemma_expert.lm_head.",
)


@dataclasses.dataclass
class LoadReport:
    loaded: list[str]  # our keys filled from the checkpoint
    missing: list[str]  # our keys absent from the checkpoint (keep their init)
    unexpected: list[str]  # checkpoint keys with no place in this model
    mismatched: list[str]  # "key: ckpt shape vs model shape" (skipped)
    ignored: list[str]  # known-unused checkpoint keys (LM heads)

    def summary(self) -> str:
        def head(xs):
            return ", ".join(xs[:8]) + (f", … (+{len(xs) - 8})" if len(xs) > 8 else "")

        return (
            f"loaded {len(self.loaded)} tensors; missing {len(self.missing)} [{head(self.missing)}]; "
            f"unexpected {len(self.unexpected)} [{head(self.unexpected)}]; mismatched {len(self.mismatched)} "
            f"[{head(self.mismatched)}]; ignored {len(self.ignored)}"
        )


def map_key(key: str, own_keys: set[str]) -> str | None:
    if key.startswith("model.") and key not in own_keys:  # LeRobot wraps the openpi module as `model`
        key = key[len("model.") :]
    if key in own_keys:
        return key
    for src, dst in KEY_PREFIXES:
        if key.startswith(src):
            return dst + key[len(src) :]
    return None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no *.safetensors file in checkpoint directory {p}")
    elif p.exists():
        files = [p]
    else:
        raise FileNotFoundError(f"checkpoint {p} does not exist (pi05_base must be a local file; nothing is downloaded)")
    from safetensors.torch import load_file

    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(load_file(str(f)))
    return sd


EMBED_KEY = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
LM_HEAD_KEY = "paligemma_with_expert.paligemma.lm_head.weight"


def _untie_embedder(sd: dict[str, torch.Tensor]) -> None:
    """PaliGemma ties embed_tokens and lm_head; safetensors stores a shared tensor once, so converted
    checkpoints may hold only `lm_head.weight`. Use it as the embedder then (the rows are identical)."""
    for prefix in ("", "model."):
        if prefix + EMBED_KEY not in sd and prefix + LM_HEAD_KEY in sd:
            sd[prefix + EMBED_KEY] = sd[prefix + LM_HEAD_KEY]


@torch.no_grad()
def load_pi05_base(model: nn.Module, source: str | Path | dict[str, torch.Tensor]) -> LoadReport:
    """Copy every matching tensor (cast to the model's dtype) into `model`; report the rest."""
    sd = dict(read_state_dict(source) if not isinstance(source, dict) else source)
    _untie_embedder(sd)
    own = model.state_dict()
    own_keys = set(own)
    loaded, unexpected, mismatched, ignored = [], [], [], []
    for key, value in sd.items():
        if key.startswith(IGNORED_PREFIXES) or key.removeprefix("model.").startswith(IGNORED_PREFIXES):
            ignored.append(key)
            continue
        target = map_key(key, own_keys)
        if target is None or target not in own:
            unexpected.append(key)
            continue
        if tuple(own[target].shape) != tuple(value.shape):
            mismatched.append(f"{key}: {tuple(value.shape)} vs {target}: {tuple(own[target].shape)}")
            continue
        own[target].copy_(value.to(own[target].dtype))
        loaded.append(target)
    done = set(loaded)
    missing = sorted(k for k in own_keys if k not in done)
    return LoadReport(sorted(loaded), missing, sorted(unexpected), mismatched, sorted(ignored))
