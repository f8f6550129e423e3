"""Episode bookkeeping for evaluation: which episodes a run owes, their files, and resuming.

One episode = (task, instance, rollout). Its result is `out/metrics/{task}_{instance}_{rollout}.json`
in OmniGibson's per-episode format (DESIGN §5, facts §3.3) plus our own fields. Files are written
atomically (temp file + rename), so a killed evaluation never leaves a half-written result, and a
rerun skips every episode whose file already parses.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behavior_lab.data.schema import CONTROL_HZ


@dataclass(frozen=True)
class EpisodeSpec:
    task: str
    instance: int
    rollout: int
    seed: int  # env + policy randomness for this rollout (deterministic from the triple)

    @property
    def stem(self) -> str:
        return f"{self.task}_{self.instance}_{self.rollout}"


def stable_seed(*parts: Any) -> int:
    """A process-independent 31-bit seed (never Python's randomised hash())."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def plan_episodes(task: str, instances: list[int], rollouts: int, base_seed: int = 0) -> list[EpisodeSpec]:
    return [
        EpisodeSpec(task, int(i), r, stable_seed(base_seed, task, int(i), r))
        for i in instances
        for r in range(rollouts)
    ]


def metrics_path(out: Path, spec: EpisodeSpec) -> Path:
    return Path(out) / "metrics" / f"{spec.stem}.json"


def is_done(out: Path, spec: EpisodeSpec) -> bool:
    """Finished = the metrics file exists and holds a q-score (a corrupt file is redone)."""
    p = metrics_path(out, spec)
    if not p.is_file():
        return False
    try:
        return "final" in json.loads(p.read_text())["q_score"]
    except (ValueError, KeyError, TypeError):
        return False


def atomic_write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _ratio(reference: float | None, value: float) -> float | None:
    if reference is None or value <= 0:
        return None
    return float(reference) / float(value)


def episode_record(
    spec: EpisodeSpec,
    *,
    q_score: float,
    success: bool,
    steps: int,
    predicates: dict[str, bool],
    agent_distance: dict[str, float],
    human_mean_steps: float | None,
    human_distance: dict[str, float] | None,
    config_hash: str,
    ckpt_hash: str,
    extra: dict | None = None,
) -> dict:
    """The per-episode JSON: OmniGibson's keys (facts §3.3) + ours."""
    human_distance = human_distance or {}
    rec = {
        "q_score": {"final": float(q_score)},
        "time": {
            "simulator_steps": int(steps),
            "simulator_time": steps / CONTROL_HZ,  # steps x render dt (1/30 s), facts §3.3
            "normalized_time": _ratio(human_mean_steps, steps),  # human_mean_steps / agent_steps
        },
        "agent_distance": {k: float(v) for k, v in agent_distance.items()},
        "normalized_agent_distance": {
            k: _ratio(human_distance.get(k), v) for k, v in agent_distance.items()
        },
        "success": bool(success),
        "predicates": {k: bool(v) for k, v in predicates.items()},
        "predicates_satisfied": int(sum(bool(v) for v in predicates.values())),
        "task": spec.task,
        "instance": spec.instance,
        "rollout": spec.rollout,
        "seed": spec.seed,
        "config_hash": config_hash,
        "ckpt_hash": ckpt_hash,
    }
    if extra:
        rec.update(extra)
    return rec


def hash_config(obj: Any) -> str:
    """Short stable hash of a JSON-able config (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def hash_path(path: Path) -> str:
    """Short content hash of a checkpoint file or directory (weights + config)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if p.suffix in (".json", ".yaml", ".safetensors", ".npz", ".ckpt", ".pt"):
            h.update(p.name.encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]
