"""Synthetic sweep result folders with known effects: for the reporting benchmark, the example
report, and tests that need a realistic grid. Files are exactly what `behavior-lab eval` writes
(metrics/{task}_{instance}_{rollout}.json) plus each cell's cell.json."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from behavior_lab.reporting.reference import TASK_DEMO_SECONDS

DEFAULT_TASKS = ("turning_on_radio", "picking_up_trash", "hanging_pictures", "make_microwave_popcorn",
                 "attach_a_camera_to_a_tripod")
DEFAULT_EFFECTS = {"task_embeddings": 0.10, "correlated_noise": 0.06, "system2": 0.04, "inpainting": 0.0,
                   "spline_speedup": 0.02, "gripper_corrections": 0.03}


def episode_metrics(q: float, steps: int, human_steps: float, rng: np.random.Generator, **extra) -> dict:
    dist = {p: float(rng.uniform(2.0, 30.0)) for p in ("base", "left", "right")}
    human = {p: float(d * rng.uniform(0.4, 1.1)) for p, d in dist.items()}
    return {
        "q_score": {"final": float(q)},
        "time": {"simulator_steps": int(steps), "simulator_time": steps / 30.0,
                 "normalized_time": float(human_steps / steps)},
        "agent_distance": dist,
        "normalized_agent_distance": {p: human[p] / dist[p] for p in dist},
        **extra,
    }


def write_grid(
    root: str | Path,
    toggles: Mapping[str, float] | Sequence[str] = DEFAULT_EFFECTS,
    tasks: Sequence[str] = DEFAULT_TASKS,
    episodes: int = 10,
    seeds: Sequence[int] = (0,),
    seed: int = 0,
    base_skill: float = 0.25,
    cell_names: str = "short",
) -> list[Path]:
    """Write one folder per (toggle combination, seed) under root; returns the cell folders.

    Episode q: a latent per-episode skill = base + task difficulty + sum of the effects of the
    toggles that are on (+ noise); skill >= 1 is a success, else partial credit floor(k·skill)/k
    for a task with k goal predicates (0 below a threshold)."""
    effects = dict(toggles) if isinstance(toggles, Mapping) else {t: 0.05 for t in toggles}
    names = list(effects)
    rng = np.random.default_rng(seed)
    difficulty = {t: 0.45 - 0.9 * (min(TASK_DEMO_SECONDS.get(t, 300.0), 700.0) / 700.0) for t in tasks}
    predicates = {t: int(rng.integers(3, 8)) for t in tasks}
    folders = []
    for combo in itertools.product((False, True), repeat=len(names)):
        on = dict(zip(names, combo))
        label = ("+".join(n for n in names if on[n]) or "baseline") if cell_names == "long" else \
            "".join("1" if on[n] else "0" for n in names)
        for s in seeds:
            folder = Path(root) / f"cell_{label}" / f"seed_{s}"
            (folder / "metrics").mkdir(parents=True, exist_ok=True)
            (folder / "cell.json").write_text(json.dumps(
                {"cell": label, "toggles": on, "seed": int(s), "suite": "embedded", "episodes_per_task": episodes}))
            for task in tasks:
                human_steps = TASK_DEMO_SECONDS.get(task, 300.0) * 30.0
                for i in range(episodes):
                    skill = base_skill + difficulty[task] + sum(effects[n] for n in names if on[n]) \
                        + rng.normal(0.0, 0.35)
                    k = predicates[task]
                    q = 1.0 if skill >= 1.0 else (np.floor(k * max(skill, 0.0)) / k if skill > 0.15 else 0.0)
                    steps = int(human_steps * rng.uniform(0.9, 2.0)) if q == 1.0 else int(2 * human_steps)
                    payload = episode_metrics(q, steps, human_steps, rng, success=bool(q == 1.0), seed=int(s),
                                              cell=label, task=task, instance=i, rollout=0)
                    (folder / "metrics" / f"{task}_{i}_0.json").write_text(json.dumps(payload))
            folders.append(folder)
    return folders


def write_official_format_run(root: str | Path, tasks: Sequence[str] | None = None, episodes: int = 10,
                              missing: Sequence[tuple[str, int]] = (("can_meat", 3),), seed: int = 1,
                              suite: str | None = "synthetic") -> Path:
    """A single run in OmniGibson eval.py's format (`json/`, only the official keys), all 50 tasks by
    default, with a few rollouts missing. `suite` goes into a cell.json (None: no cell.json, so the
    files read exactly like an OmniGibson submission)."""
    from behavior_lab.data.schema import TASK_NAMES

    rng = np.random.default_rng(seed)
    root = Path(root)
    folder = root / "json"
    folder.mkdir(parents=True, exist_ok=True)
    if suite is not None:
        (root / "cell.json").write_text(json.dumps({"cell": root.name, "suite": suite}))
    skip = set(missing)
    for task in tasks or TASK_NAMES:
        human_steps = TASK_DEMO_SECONDS.get(task, 300.0) * 30.0
        for i in range(episodes):
            if (task, i) in skip:
                continue
            q = float(rng.choice([0.0, 0.25, 0.5, 1.0], p=[0.5, 0.2, 0.15, 0.15]))
            steps = int(human_steps * rng.uniform(0.8, 2.0))
            (folder / f"{task}_{i}_0.json").write_text(json.dumps(episode_metrics(q, steps, human_steps, rng)))
    return root
