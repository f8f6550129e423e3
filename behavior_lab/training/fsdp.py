"""FSDP sharding of the mixture-of-transformers model: one unit per LAYER PAIR.

Why pairs, never each expert alone. At layer i the VLM block and the action-expert block belong to
one attention: in the joint pass (openpi's training pass, ``MixtureOfTransformers.joint_forward``)
block i of both experts computes Q/K/V, one softmax runs over the concatenated sequence, then each
expert finishes with its own o_proj/MLP — the two blocks' parameters are needed at the same moment.
Sharding them as separate units would all-gather two units per layer, interleaved, and FSDP's
prefetch (which assumes units run one after another in a fixed order) would fetch the wrong one next.
One unit per pair gathers layer i's weights once (one collective), in execution order, and frees
them together. Wrapping only whole stacks would instead hold an entire expert unsharded at a time.

The blocks' weights are used through methods (``GemmaBlock.qkv`` / ``GemmaBlock.finish``), not
``forward``, so those methods are registered as FSDP forward methods: FSDP unshards before and
reshards after them (likewise the root's ``compute_loss`` / ``sample_actions``). A consequence of
the model's pass structure (all VLM layers, then the KV transform over every layer's cache, then all
expert layers): each pair unit is gathered once for the VLM half and once for the expert half, so
with ``reshard_after_forward=True`` a layer pair is all-gathered twice per forward. With FSDP2 (``torch.distributed.fsdp.fully_shard``) a list of modules is one
parameter group, which is exactly the pair.
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

BLOCK_METHODS = ("qkv", "finish")  # behavior_lab.models.gemma_mot.GemmaBlock
ROOT_METHODS = ("compute_loss", "sample_actions")  # PiBehavior's entry points (training_step calls compute_loss)


def find_layer_pairs(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(vlm.layers[i], expert.layers[i]) of the model's MixtureOfTransformers."""
    from behavior_lab.models.gemma_mot import MixtureOfTransformers

    mots = [m for m in model.modules() if isinstance(m, MixtureOfTransformers)]
    if len(mots) != 1:
        raise ValueError(f"expected exactly one MixtureOfTransformers in {type(model).__name__}, found {len(mots)}")
    mot = mots[0]
    return list(zip(mot.vlm.layers, mot.expert.layers, strict=True))


def shard_layer_pairs(
    model: nn.Module,
    mesh=None,
    mp_policy=None,
    reshard_after_forward: bool = True,
    extra_units: Iterable[nn.Module] = (),
) -> nn.Module:
    """Apply FSDP2 to ``model``: one unit per layer pair, optional extra units (e.g. the vision
    tower), then the root (embeddings, heads, final norms)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    kwargs = {"mesh": mesh, "reshard_after_forward": reshard_after_forward,
              "mp_policy": mp_policy if mp_policy is not None else MixedPrecisionPolicy()}
    for vlm_block, expert_block in find_layer_pairs(model):
        fully_shard([vlm_block, expert_block], **kwargs)
        for block in (vlm_block, expert_block):
            for name in BLOCK_METHODS:
                register_fsdp_forward_method(block, name)
    for unit in extra_units:
        fully_shard(unit, **kwargs)
    fully_shard(model, **kwargs)
    for name in ROOT_METHODS:  # the root unit (embeddings, heads, vision) is gathered around these calls
        if hasattr(model, name):
            register_fsdp_forward_method(model, name)
    return model
