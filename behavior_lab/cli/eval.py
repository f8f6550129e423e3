"""`behavior-lab eval ckpt=PATH tasks=[...] episodes_per_task=N out=DIR [backend=embedded|omnigibson]`."""

from __future__ import annotations

from omegaconf import DictConfig


def run(cfg: DictConfig) -> dict:
    from behavior_lab.eval.evaluate import evaluate

    result = evaluate(cfg)
    print(f"metrics written to {result['out']}/metrics")
    return result
