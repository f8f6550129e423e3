"""BEHAVIOR-1K 2025 scores from per-episode metrics JSONs — the one place scores are computed.

Reads the files OmniGibson's `learning/eval.py` writes (`q_score.final`, `time.*`,
`agent_distance`, `normalized_agent_distance`) and ours (the same keys plus `success`, `seed`,
`cell`, ...; docs/interfaces.md), named `{task}_{instance}_{rollout}.json`.

Aggregation follows the official scorer exactly (facts §3.2–3.3, B1K
`OmniGibson/omnigibson/learning/utils/score_utils.py`):
- task q        = sum of episode q over the task's rollouts / episodes expected (missing = 0);
- task SR       = #(episodes with q == 1) / episodes expected;
- time score    = per rollout `2 - 1/normalized_time` if normalized_time <= 1 else `normalized_time`,
                  summed and divided like q (missing = 0);
- distance score (base / left / right) = per rollout `normalized_agent_distance.<part>`, likewise;
- overall       = plain mean of the per-task numbers over the tasks scored.
The official scorer fixes 10 expected rollouts and all 50 tasks; here both are arguments (the
embedded suite runs subsets), defaulting to "inferred" (see `score_episodes`).

Confidence intervals are a seeded, stratified percentile bootstrap: episodes (the expected number,
missing ones as 0) are resampled with replacement within each task; the overall interval recomputes
the mean over the fixed task set from the same replicate. Tasks are the benchmark's fixed design,
instances are the random draw, so that is the variance a re-run on new instances would see.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from behavior_lab.data.schema import DIAGNOSTICS_KEY

DISTANCE_PARTS = ("base", "left", "right")
# q counts as a success at exactly 1 (score_utils.py: `v == 1`); the tolerance only absorbs
# float round-trips through JSON writers that print 0.9999999999999999.
SUCCESS_TOL = 1e-9
METRICS_NAME = re.compile(r"^(?P<task>.+)_(?P<instance>\d+)_(?P<rollout>\d+)\.json$")


class MetricsFormatError(ValueError):
    """A per-episode metrics file that cannot be read; the message names the file and the key."""


@dataclass(frozen=True)
class EpisodeResult:
    """One rollout's metrics, as read from `{task}_{instance}_{rollout}.json`."""

    task: str
    instance: int
    rollout: int
    q: float
    simulator_steps: float = math.nan
    simulator_time: float = math.nan
    normalized_time: float = math.nan
    agent_distance: dict = field(default_factory=dict)  # {base, left, right} metres
    normalized_agent_distance: dict = field(default_factory=dict)  # {base, left, right}
    extra: dict = field(default_factory=dict)  # our additional keys (success, seed, cell, ...)
    path: str = ""
    # embedded suite only (schema.DIAGNOSTICS_KEY): the hands' closest approach to any task target
    # (m) and the assisted grasps that engaged (NaN: not recorded, or nothing to grasp in the task)
    closest_approach: float = math.nan
    grasp_events: float = math.nan
    replicate: int = 0  # pooling key: episodes of several seeds may share (instance, rollout)

    @property
    def success(self) -> bool:
        return is_success(self.q)

    @property
    def time_score(self) -> float:
        return time_score(self.normalized_time)


def is_success(q: float) -> bool:
    return bool(q >= 1.0 - SUCCESS_TOL)


def time_score(normalized_time: float) -> float:
    """Leaderboard time score of one rollout (facts §3.3; score_utils.py).

    normalized_time = human mean steps / agent steps; 1 means human speed. Faster than human
    scores the ratio itself (> 1); slower scores 2 - 1/ratio (< 1, negative below ratio 0.5).
    """
    nt = float(normalized_time)
    if math.isnan(nt):
        return math.nan
    if nt <= 0.0:
        raise ValueError(f"normalized_time must be > 0 (human steps / agent steps), got {nt}")
    return 2.0 - 1.0 / nt if nt <= 1.0 else nt


def parse_metrics_name(name: str) -> tuple[str, int, int]:
    """`{task}_{instance}_{rollout}.json` -> (task, instance, rollout). Task names contain
    underscores, so the two ids are taken from the right (as score_utils.py's rsplit("_", 2))."""
    m = METRICS_NAME.match(Path(name).name)
    if m is None:
        raise MetricsFormatError(
            f"{name}: metrics file names must look like {{task}}_{{instance}}_{{rollout}}.json "
            "with integer instance and rollout ids (e.g. turning_on_radio_3_0.json)"
        )
    return m["task"], int(m["instance"]), int(m["rollout"])


def _number(value, path: str, key: str, *, required: bool) -> float:
    if value is None:
        if required:
            raise MetricsFormatError(f"{path}: missing required key {key!r}")
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricsFormatError(f"{path}: key {key!r} must be a number, got {value!r}")
    return float(value)


def _get(d: Mapping, dotted: str, path: str):
    cur = d
    for part in dotted.split("."):
        if not isinstance(cur, Mapping):
            raise MetricsFormatError(f"{path}: key {dotted!r}: {part!r} is inside a non-object value")
        if part not in cur:
            return None
        cur = cur[part]
    return cur


def _parts(d: Mapping, key: str, path: str) -> dict:
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MetricsFormatError(f"{path}: key {key!r} must be an object with {list(DISTANCE_PARTS)}")
    return {p: _number(value.get(p), path, f"{key}.{p}", required=False) for p in DISTANCE_PARTS}


def episode_from_dict(data: Mapping, task: str, instance: int, rollout: int, path: str = "") -> EpisodeResult:
    """Validate one metrics dict (the parsed JSON) into an EpisodeResult."""
    where = path or f"{task}_{instance}_{rollout}"
    if not isinstance(data, Mapping):
        raise MetricsFormatError(f"{where}: top level must be a JSON object, got {type(data).__name__}")
    if "q_score" not in data:
        raise MetricsFormatError(f"{where}: missing required key 'q_score.final'")
    q = _number(_get(data, "q_score.final", where), where, "q_score.final", required=True)
    if not 0.0 <= q <= 1.0 + SUCCESS_TOL:
        raise MetricsFormatError(f"{where}: key 'q_score.final' must lie in [0, 1], got {q}")
    time = data.get("time", {})
    if not isinstance(time, Mapping):
        raise MetricsFormatError(f"{where}: key 'time' must be an object")
    nt = _number(time.get("normalized_time"), where, "time.normalized_time", required=False)
    if not math.isnan(nt) and nt <= 0.0:
        raise MetricsFormatError(f"{where}: key 'time.normalized_time' must be > 0, got {nt}")
    known = {"q_score", "time", "agent_distance", "normalized_agent_distance"}
    extra = {k: v for k, v in data.items() if k not in known}
    closest, grasps = _diagnostics(data.get(DIAGNOSTICS_KEY), where)
    return EpisodeResult(
        task=task,
        instance=instance,
        rollout=rollout,
        q=min(q, 1.0),
        simulator_steps=_number(time.get("simulator_steps"), where, "time.simulator_steps", required=False),
        simulator_time=_number(time.get("simulator_time"), where, "time.simulator_time", required=False),
        normalized_time=nt,
        agent_distance=_parts(data, "agent_distance", where),
        normalized_agent_distance=_parts(data, "normalized_agent_distance", where),
        extra=extra,
        path=path,
        closest_approach=closest,
        grasp_events=grasps,
    )


def _diagnostics(diag, where: str) -> tuple[float, float]:
    """(closest approach over the task's targets in m, total grasp events) from an episode's
    reach and grasp diagnostics (behavior_lab.sim.diagnostics); NaN for what is not there."""
    if diag is None:
        return math.nan, math.nan
    closest = diag.get("closest_approach_m") if isinstance(diag, Mapping) else None
    grasps = diag.get("grasp_events") if isinstance(diag, Mapping) else None
    if not isinstance(closest, Mapping) or not isinstance(grasps, Mapping):
        raise MetricsFormatError(f"{where}: key {DIAGNOSTICS_KEY!r} must be an object with the objects "
                                 "'closest_approach_m' {target: metres} and 'grasp_events' {body: count}")
    try:
        near = min((float(v) for v in closest.values()), default=math.nan)
        count = float(sum(int(v) for v in grasps.values())) if grasps else math.nan
    except (TypeError, ValueError) as e:
        raise MetricsFormatError(f"{where}: key {DIAGNOSTICS_KEY!r} holds a non-numeric value ({e})") from e
    return near, count


def load_episode(path: str | Path) -> EpisodeResult:
    """Read one `{task}_{instance}_{rollout}.json`; errors name the file and the key."""
    path = Path(path)
    task, instance, rollout = parse_metrics_name(path.name)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MetricsFormatError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from e
    return episode_from_dict(data, task, instance, rollout, str(path))


def load_metrics_dir(directory: str | Path) -> list[EpisodeResult]:
    """All metrics JSONs of one result folder (the folder itself, or its `metrics/` / `json/`)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"results folder {directory} does not exist")
    for sub in ("metrics", "json"):
        if (directory / sub).is_dir() and not any(METRICS_NAME.match(p.name) for p in directory.glob("*.json")):
            directory = directory / sub
            break
    return [load_episode(p) for p in sorted(directory.glob("*.json")) if METRICS_NAME.match(p.name)]


# --- aggregation ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True)
class TaskScore:
    task: str
    episodes: int  # episodes found
    expected: int  # denominator (missing episodes count 0)
    q_score: float
    success_rate: float
    time_score: float
    distance_score: dict  # {base, left, right}
    q_ci: Interval
    sr_ci: Interval


@dataclass(frozen=True)
class ScoreSummary:
    """Per-task and overall scores of one set of episodes (one run / cell / seed)."""

    tasks: list[TaskScore]
    q_score: float
    task_sr: float
    time_score: float
    distance_score: dict
    q_ci: Interval
    sr_ci: Interval
    ci_level: float
    n_boot: int
    boot_seed: int

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def task(self, name: str) -> TaskScore:
        for t in self.tasks:
            if t.task == name:
                return t
        raise KeyError(f"task {name!r} not scored; scored: {[t.task for t in self.tasks]}")

    def overall_dict(self) -> dict:
        """The overall.json payload (DESIGN §6: q_score, task_sr, num_tasks, ...)."""
        return {
            "q_score": self.q_score,
            "task_sr": self.task_sr,
            "num_tasks": self.num_tasks,
            "episodes": sum(t.episodes for t in self.tasks),
            "episodes_expected": sum(t.expected for t in self.tasks),
            "time_score": self.time_score,
            "base_distance_score": self.distance_score["base"],
            "left_distance_score": self.distance_score["left"],
            "right_distance_score": self.distance_score["right"],
            "q_score_ci": self.q_ci.as_list(),
            "task_sr_ci": self.sr_ci.as_list(),
            "ci_level": self.ci_level,
            "bootstrap": {"resamples": self.n_boot, "seed": self.boot_seed,
                          "method": "percentile, episodes resampled within each task"},
        }

    def task_rows(self) -> list[dict]:
        rows = []
        for t in self.tasks:
            d = asdict(t)
            d.pop("distance_score")
            d.update({f"{p}_distance_score": t.distance_score[p] for p in DISTANCE_PARTS})
            d["q_ci_low"], d["q_ci_high"] = d.pop("q_ci").values()
            d["sr_ci_low"], d["sr_ci_high"] = d.pop("sr_ci").values()
            rows.append(d)
        return rows


def _episode_key(ep: EpisodeResult) -> tuple:
    return (ep.task, ep.replicate, ep.instance, ep.rollout)


def infer_expected(episodes: Sequence[EpisodeResult]) -> int:
    """Episodes expected per task when not given: the most episodes any task has.

    A run missing some rollouts of one task is then scored against the full count; a run missing
    rollouts of every task cannot be detected this way — pass `expected` for official numbers (10).
    """
    counts: dict[str, int] = {}
    for ep in episodes:
        counts[ep.task] = counts.get(ep.task, 0) + 1
    return max(counts.values(), default=0)


def _percentile_interval(samples: np.ndarray, level: float) -> Interval:
    lo, hi = np.quantile(samples, [(1 - level) / 2, 1 - (1 - level) / 2], axis=-1)
    return Interval(float(lo), float(hi))


def score_episodes(
    episodes: Iterable[EpisodeResult],
    *,
    tasks: Sequence[str] | None = None,
    expected: int | Mapping[str, int] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
) -> ScoreSummary:
    """Official-style task and overall scores with bootstrap CIs.

    tasks: the tasks to score (a task with no episodes scores 0); default: those present.
    expected: episodes expected per task (int, or {task: int}); default `infer_expected`.
    Episodes are keyed by (task, replicate, instance, rollout); a duplicate key is an error. Pooling
    several seeds: give each seed its own `replicate` and multiply `expected` by the seed count.
    """
    episodes = list(episodes)
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    seen: dict[tuple, str] = {}
    for ep in episodes:
        key = _episode_key(ep)
        if key in seen:
            raise ValueError(
                f"duplicate episode: task {key[0]} instance {key[2]} rollout {key[3]} (replicate {key[1]}) "
                f"in {seen[key] or '<record>'} and {ep.path or '<record>'}"
            )
        seen[key] = ep.path
    task_list = list(tasks) if tasks is not None else sorted({ep.task for ep in episodes})
    if not task_list:
        raise ValueError("nothing to score: no episodes and no tasks given")
    extra_tasks = {ep.task for ep in episodes} - set(task_list)
    if extra_tasks:
        raise ValueError(f"episodes of tasks outside the scored set: {sorted(extra_tasks)}; scored tasks: {task_list}")
    default_expected = infer_expected(episodes)
    rng = np.random.default_rng(seed)
    task_scores, boot_q, boot_sr = [], [], []
    for task in task_list:
        eps = [ep for ep in episodes if ep.task == task]
        n_exp = (expected.get(task, default_expected) if isinstance(expected, Mapping)
                 else expected if expected is not None else default_expected)
        n_exp = int(n_exp)
        if n_exp <= 0:
            raise ValueError(f"task {task}: expected episodes must be > 0, got {n_exp}")
        if len(eps) > n_exp:
            raise ValueError(f"task {task}: {len(eps)} episodes found but only {n_exp} expected")
        q = np.zeros(n_exp)
        q[: len(eps)] = [ep.q for ep in eps]
        succ = (q >= 1.0 - SUCCESS_TOL).astype(float)
        succ[len(eps):] = 0.0
        # Secondary scores: a missing rollout contributes 0 (score_utils.py divides by 10); a present
        # rollout without the key (e.g. our embedded suite without a human reference) is NaN.
        ts = sum(ep.time_score for ep in eps) / n_exp
        dist = {p: sum(ep.normalized_agent_distance.get(p, math.nan) for ep in eps) / n_exp for p in DISTANCE_PARTS}
        idx = rng.integers(0, n_exp, size=(n_boot, n_exp)) if n_boot > 0 else np.zeros((0, n_exp), int)
        bq, bs = q[idx].mean(axis=1), succ[idx].mean(axis=1)
        boot_q.append(bq)
        boot_sr.append(bs)
        task_scores.append(TaskScore(
            task=task, episodes=len(eps), expected=n_exp,
            q_score=float(q.sum() / n_exp), success_rate=float(succ.sum() / n_exp),
            time_score=float(ts), distance_score={p: float(v) for p, v in dist.items()},
            q_ci=_percentile_interval(bq, ci) if n_boot else Interval(math.nan, math.nan),
            sr_ci=_percentile_interval(bs, ci) if n_boot else Interval(math.nan, math.nan),
        ))
    overall_q = float(np.mean([t.q_score for t in task_scores]))
    overall_sr = float(np.mean([t.success_rate for t in task_scores]))
    if n_boot:
        q_ci = _percentile_interval(np.mean(boot_q, axis=0), ci)
        sr_ci = _percentile_interval(np.mean(boot_sr, axis=0), ci)
    else:
        q_ci = sr_ci = Interval(math.nan, math.nan)
    return ScoreSummary(
        tasks=task_scores,
        q_score=overall_q,
        task_sr=overall_sr,
        time_score=float(np.mean([t.time_score for t in task_scores])),
        distance_score={p: float(np.mean([t.distance_score[p] for t in task_scores])) for p in DISTANCE_PARTS},
        q_ci=q_ci,
        sr_ci=sr_ci,
        ci_level=ci,
        n_boot=n_boot,
        boot_seed=seed,
    )


def score_dir(directory: str | Path, **kwargs) -> ScoreSummary:
    """`score_episodes(load_metrics_dir(directory), **kwargs)`."""
    return score_episodes(load_metrics_dir(directory), **kwargs)
