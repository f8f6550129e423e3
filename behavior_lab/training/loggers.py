"""Experiment loggers: CSV (default, no extra dependency), TensorBoard, Weights & Biases.

TensorBoard and W&B are optional dependencies (`pip install 'behavior_lab[tracking]'`); they are
imported only when selected, and a missing package fails at start-up with the fix, not mid-run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Mapping

_OPTIONAL = {
    "tensorboard": (("tensorboard", "tensorboardX"), "logger=tensorboard needs `tensorboard`"),
    "wandb": (("wandb",), "logger=wandb needs `wandb`"),
}


def _require(kind: str) -> None:
    modules, what = _OPTIONAL[kind]
    if not any(importlib.util.find_spec(m) for m in modules):
        raise ImportError(
            f"{what}, which is not installed. Install it with `pip install 'behavior_lab[tracking]'` "
            f"(or `pip install {modules[0]}`), or use the default logger=csv."
        )


def build_loggers(spec: Mapping[str, Any] | None, save_dir: str | Path) -> list:
    """``spec``: {name: {kind: csv|tensorboard|wandb, ...kwargs}}; returns Lightning loggers."""
    loggers = []
    for name, node in (spec or {}).items():
        if node is None:
            continue
        node = dict(node)
        kind = node.pop("kind", name)
        node.setdefault("save_dir", str(save_dir))
        if kind == "csv":
            from lightning.pytorch.loggers import CSVLogger

            loggers.append(CSVLogger(**node))
        elif kind == "tensorboard":
            _require("tensorboard")
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(**node))
        elif kind == "wandb":
            _require("wandb")
            from lightning.pytorch.loggers import WandbLogger

            loggers.append(WandbLogger(**node))
        else:
            raise KeyError(f"unknown logger kind {kind!r} in logger.{name}; valid kinds: csv, tensorboard, wandb")
    return loggers
