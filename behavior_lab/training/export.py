"""Write the exported checkpoint directory (docs/interfaces.md, "Exported checkpoint").

    <out>/export/
      config.yaml              the resolved Hydra config of the run
      model.safetensors        EMA weights (the seed exports EMA as `params`, spec §12.1)
      norm_stats.json          copied from <data.root>/meta/
      action_correlation.npz   copied when present
      fast_tokenizer/          copied when present

Written into a temporary sibling directory and renamed into place, so a reader never sees a
half-written export (STYLE habit 12).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file

META_FILES = ("norm_stats.json", "action_correlation.npz")
META_DIRS = ("fast_tokenizer",)


def _dedupe_shared(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing storage (tied weights); store independent contiguous copies."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def export_checkpoint(
    out_dir: str | os.PathLike,
    state_dict: Mapping[str, torch.Tensor],
    cfg: DictConfig | Mapping,
    data_root: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    out_dir = Path(out_dir)
    meta_dir = Path(data_root) / "meta"
    if not (meta_dir / "norm_stats.json").is_file():
        raise FileNotFoundError(
            f"{meta_dir / 'norm_stats.json'} is missing; run `behavior-lab stats data.root={data_root}` first"
        )
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    cfg_node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    (tmp / "config.yaml").write_text(OmegaConf.to_yaml(cfg_node, resolve=True))
    md = {"format": "behavior_lab.export/1", "weights": "ema"}
    md.update({k: str(v) for k, v in (metadata or {}).items()})
    save_file(_dedupe_shared(state_dict), str(tmp / "model.safetensors"), metadata=md)
    for name in META_FILES:
        if (meta_dir / name).is_file():
            shutil.copy2(meta_dir / name, tmp / name)
    for name in META_DIRS:
        if (meta_dir / name).is_dir():
            shutil.copytree(meta_dir / name, tmp / name)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir
