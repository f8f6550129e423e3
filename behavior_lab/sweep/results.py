"""Sweep results: metrics JSONs -> ledger metrics, ledger -> report records and a results tree.

The ledger is the source of truth. Each finished eval unit holds its episodes as
`metrics = {"episodes": [{<per-episode metrics JSON>, "instance": i, "rollout": r}, ...]}`
(the record format of behavior_lab.reporting.ledger). At the end of a sweep the records of the
planned cells are written out as a folder tree the `report` command reads like any result folder:

    out/results/<cell>/seed_<s>/cell.json                       {"cell", "toggles", "seed", "episodes_per_task", ...}
    out/results/<cell>/seed_<s>/metrics/{task}_{instance}_{rollout}.json
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from behavior_lab.eval.scoring import METRICS_NAME, episode_from_dict
from behavior_lab.sweep.ledger import UnitState
from behavior_lab.sweep.planner import Plan

SAFE = re.compile(r"[^A-Za-z0-9_.+=@-]")


def read_episodes(metrics_dir: Path, task: str) -> list[dict]:
    """The episodes of `task` in a metrics folder, validated, with their instance and rollout."""
    episodes = []
    for path in sorted(Path(metrics_dir).glob("*.json")):
        m = METRICS_NAME.match(path.name)
        if not m or m["task"] != task:
            continue
        data = json.loads(path.read_text())
        episode_from_dict(data, task, int(m["instance"]), int(m["rollout"]), str(path))  # validates
        episodes.append({**data, "instance": int(m["instance"]), "rollout": int(m["rollout"])})
    return episodes


def task_score(episodes: Sequence[Mapping], task: str, expected: int) -> float:
    """DESIGN §5: task q = sum of episode q over the episodes expected (missing = 0)."""
    total = sum(episode_from_dict(e, task, int(e["instance"]), int(e["rollout"])).q for e in episodes)
    return total / max(expected, len(episodes), 1)


def records(plan: Plan, states: Mapping[str, UnitState]) -> list[dict]:
    """Report records (behavior_lab.reporting.ledger format) for every finished eval of the plan."""
    out = []
    for ev in plan.evals:
        st = states.get(ev.id)
        if st is None or st.done is None:
            continue
        attrs = st.done.user_attrs
        for member in plan.members.get(ev.id, []):
            out.append(
                {
                    **member.cell.description(),
                    "seed": member.seed,
                    "task": ev.task,
                    "episodes_per_task": plan.settings.episodes_per_task,
                    "unit_id": ev.id,
                    "suite": attrs.get("suite", "embedded"),
                    "metrics": attrs["metrics"],
                }
            )
    return out


def cell_dir_name(cell: str) -> str:
    return SAFE.sub("_", cell) or "cell"


def write_results_tree(recs: Sequence[Mapping[str, Any]], root: Path) -> Path:
    """Write `recs` as cell folders of metrics JSONs under `root` (replaced whole, atomically)."""
    root = Path(root)
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")  # per process: two sweeps may finish together
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    described: set[Path] = set()
    for rec in recs:
        folder = tmp / cell_dir_name(str(rec["cell"])) / f"seed_{rec['seed']}"
        if folder not in described:
            (folder / "metrics").mkdir(parents=True, exist_ok=True)
            meta = {k: rec[k] for k in ("cell", "toggles", "seed", "episodes_per_task", "suite") if k in rec}
            (folder / "cell.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            described.add(folder)
        for ep in rec["metrics"]["episodes"]:
            body = {k: v for k, v in ep.items()}
            name = f"{rec['task']}_{int(ep['instance'])}_{int(ep['rollout'])}.json"
            (folder / "metrics" / name).write_text(json.dumps(body, sort_keys=True))
    old = root.with_name(f"{root.name}.old-{os.getpid()}")
    for _ in range(5):  # another process may swap its tree in between: the last writer wins
        try:
            if root.exists():
                os.replace(root, old)
            os.replace(tmp, root)
            break
        except OSError:
            continue
    else:
        raise OSError(f"could not replace {root} with the new results tree {tmp}")
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    return root


def mean_score(recs: Sequence[Mapping], tasks: Sequence[str], expected: int) -> float:
    """Mean task q-score over `tasks` and the seeds present (missing tasks count 0)."""
    seeds = sorted({r["seed"] for r in recs}) or [None]
    per = {(r["seed"], r["task"]): task_score(r["metrics"]["episodes"], r["task"], expected) for r in recs}
    return sum(per.get((s, t), 0.0) for s in seeds for t in tasks) / (len(seeds) * len(tasks))
