"""Per-task checkpoint switching (spec §12.5, §13.4; the seed's `CheckpointSwitcher`).

A task -> checkpoint map selects which model serves each request. As in the seed, only
`max_loaded` checkpoints (default 1) are kept in memory; asking for another evicts the least
recently used one. The runtime resets an environment's stage, votes, plan and kept actions on a
task change (runtime.py), so a switched checkpoint never sees the previous model's state.

The map file is the seed's `task_checkpoint_mapping.json` format:
    {"checkpoints": {"<name>": {"path": "<dir>", "tasks": [ids...]}, ...}}
Tasks not in the map go to `default_path` when one is given, and are an error otherwise.
"""

from __future__ import annotations

import gc
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from behavior_lab.data import schema
from behavior_lab.policy.observation import ObservationError
from behavior_lab.policy.predictor import ChunkPrediction, ChunkPredictor, ChunkRequest

logger = logging.getLogger(__name__)


def read_task_checkpoint_map(source: str | Path | Mapping[str, Any]) -> dict[int, str]:
    """Seed-format mapping (file or dict) -> {task_id: checkpoint path}; each task at most once."""
    if isinstance(source, Mapping):
        obj, where = dict(source), "task checkpoint map"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: task -> checkpoint map not found")
        try:
            obj, where = json.loads(path.read_text()), str(path)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    ckpts = obj.get("checkpoints")
    if not isinstance(ckpts, Mapping) or not ckpts:
        raise ValueError(f'{where}: expected {{"checkpoints": {{name: {{"path": ..., "tasks": [...]}}}}}}')
    out: dict[int, str] = {}
    for name, info in ckpts.items():
        if not isinstance(info, Mapping) or "path" not in info or "tasks" not in info:
            raise ValueError(f"{where}: checkpoint {name!r} needs 'path' and 'tasks'")
        for t in info["tasks"]:
            tid = schema.task_id(t)
            if tid in out:
                raise ValueError(f"{where}: task {tid} is assigned to more than one checkpoint")
            out[tid] = str(Path(str(info["path"])).expanduser())
    return out


class TaskCheckpointSwitcher:
    """A ChunkPredictor that routes each request to the predictor of its task's checkpoint."""

    def __init__(
        self,
        task_to_path: Mapping[int, str],
        load_predictor: Callable[[str], ChunkPredictor],
        *,
        default_path: str | None = None,
        max_loaded: int = 1,
    ) -> None:
        if max_loaded < 1:
            raise ValueError("max_loaded must be >= 1")
        self.task_to_path = {int(k): str(v) for k, v in task_to_path.items()}
        self.default_path = default_path
        self.load_predictor = load_predictor
        self.max_loaded = max_loaded
        self.loaded: OrderedDict[str, ChunkPredictor] = OrderedDict()
        self.loads = 0

    def path_for(self, task_id: int) -> str:
        path = self.task_to_path.get(int(task_id), self.default_path)
        if path is None:
            raise ObservationError(
                f"task {task_id} is not in the task -> checkpoint map and no default checkpoint was given; "
                f"mapped tasks: {sorted(self.task_to_path)}"
            )
        return path

    def predictor_for(self, task_id: int) -> ChunkPredictor:
        path = self.path_for(task_id)
        if path in self.loaded:
            self.loaded.move_to_end(path)
            return self.loaded[path]
        while len(self.loaded) >= self.max_loaded:
            old, _ = self.loaded.popitem(last=False)
            logger.info("unloading checkpoint %s", old)
            gc.collect()
            _empty_device_cache()
        logger.info("loading checkpoint %s for task %d", path, task_id)
        pred = self.load_predictor(path)
        self.loads += 1
        self.loaded[path] = pred
        return pred

    def predict(self, requests: Sequence[ChunkRequest]) -> ChunkPrediction:
        for r in requests:  # fail before loading anything
            self.path_for(r.task_id)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(self.path_for(r.task_id), []).append(i)
        actions: list[Any] = [None] * len(requests)
        logits: list[Any] = [None] * len(requests)
        for idx in groups.values():
            pred = self.predictor_for(requests[idx[0]].task_id).predict([requests[i] for i in idx])
            for j, i in enumerate(idx):
                actions[i] = np.asarray(pred.actions[j])
                logits[i] = None if pred.stage_logits is None else np.asarray(pred.stage_logits[j])
        stage_logits = None
        if all(lg is not None for lg in logits):
            width = max(lg.shape[-1] for lg in logits)
            # Checkpoints may differ in their stage-head width: pad with -inf (never the argmax).
            stage_logits = np.stack([np.pad(lg, (0, width - lg.shape[-1]), constant_values=-np.inf) for lg in logits])
        horizon = min(a.shape[0] for a in actions)
        return ChunkPrediction(actions=np.stack([a[:horizon] for a in actions]), stage_logits=stage_logits)


def _empty_device_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
