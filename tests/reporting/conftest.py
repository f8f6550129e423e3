"""Hand-built result trees for the reporting tests.

`grid_tree`: a 2x2 grid over toggles a, b; tasks turning_on_radio (72 s demos) and can_meat (395 s);
seeds 0 and 1; 2 episodes per task. Every episode of (cell, seed, task) has
    q = base[task, seed] + 0.2·a + 0.1·b + 0.1·a·b
except one missing file (cell a0b0, seed 1, can_meat, episode 1) and one success (cell a1b1,
seed 0, turning_on_radio, episode 0 has q = 1).
"""

import json
from pathlib import Path

import pytest

TASKS = ("turning_on_radio", "can_meat")
BASE = {("turning_on_radio", 0): 0.1, ("turning_on_radio", 1): 0.2, ("can_meat", 0): 0.0, ("can_meat", 1): 0.3}
MISSING = ("a0b0", 1, "can_meat", 1)
SUCCESS = ("a1b1", 0, "turning_on_radio", 0)


def metrics(q: float, normalized_time: float = 1.0, extra: bool = True) -> dict:
    d = {
        "q_score": {"final": q},
        "time": {"simulator_steps": 300, "simulator_time": 10.0, "normalized_time": normalized_time},
        "agent_distance": {"base": 1.0, "left": 1.0, "right": 1.0},
        "normalized_agent_distance": {"base": 0.5, "left": 0.5, "right": 0.5},
    }
    if extra:
        d.update({"success": q == 1.0, "seed": 1234, "predicates": {}})
    return d


def cell_q(a: int, b: int, task: str, seed: int) -> float:
    return round(BASE[(task, seed)] + 0.2 * a + 0.1 * b + 0.1 * a * b, 10)


def write_grid_tree(root: Path) -> Path:
    for a in (0, 1):
        for b in (0, 1):
            cell = f"a{a}b{b}"
            for seed in (0, 1):
                folder = root / cell / f"seed{seed}"
                (folder / "metrics").mkdir(parents=True)
                (folder / "cell.json").write_text(json.dumps(
                    {"cell": cell, "toggles": {"a": bool(a), "b": bool(b)}, "seed": seed, "episodes_per_task": 2}))
                for task in TASKS:
                    for ep in (0, 1):
                        if (cell, seed, task, ep) == MISSING:
                            continue
                        q = 1.0 if (cell, seed, task, ep) == SUCCESS else cell_q(a, b, task, seed)
                        (folder / "metrics" / f"{task}_{ep}_0.json").write_text(json.dumps(metrics(q)))
    return root


@pytest.fixture
def grid_tree(tmp_path) -> Path:
    return write_grid_tree(tmp_path / "grid")
