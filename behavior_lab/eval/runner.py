"""Lockstep closed-loop evaluation: B environments, one batched policy call per step.

The runner keeps `num_envs` slots busy with pending episodes. Each control step it asks the policy
which slots need an observation (a replan: the model runs there), renders cameras only for those,
and calls the policy once for all active slots. Finished episodes are written at once, atomically,
so a killed run resumes from the files on disk (`episodes.is_done`).
"""

from __future__ import annotations

import csv
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from behavior_lab.data.atomic import atomic_path
from behavior_lab.data.schema import DIAGNOSTICS_KEY, STEP_DIAGNOSTICS_KEY
from behavior_lab.eval.episodes import EpisodeSpec, atomic_write_json, episode_record, is_done, metrics_path


class Env(Protocol):
    def reset(self, instance: int, seed: int | None = None) -> dict: ...

    def step(self, action: np.ndarray, render: bool = True) -> tuple[dict | None, bool, dict]: ...


class BatchPolicy(Protocol):
    """What the runner needs of the policy runtime (docs/interfaces.md, addendum)."""

    def reset(self, env_index: int | None = None, seed: int | None = None) -> None: ...

    def needs_observation(self, env_index: int) -> bool: ...

    def act(self, obs_list: list, env_ids: list[int] | None = None) -> np.ndarray: ...


@dataclass
class TaskReference:
    """Per-task reference figures from the demonstrations (timeouts, normalised time/distance)."""

    max_steps: int  # 2 x mean demonstration length (facts §3.1)
    human_mean_steps: float | None = None
    human_distance: dict[str, float] | None = None


@dataclass
class _Slot:
    spec: EpisodeSpec
    env: Env
    obs: dict | None
    steps: int = 0
    info: dict = field(default_factory=dict)
    frames: list = field(default_factory=list)
    trace: list = field(default_factory=list)  # one row per step (trace=True)
    plan_stage: int | None = None  # the stage the chunk being played was conditioned on


class LockstepRunner:
    def __init__(
        self,
        env_factory: Callable[[str], Env],
        policy: BatchPolicy,
        references: dict[str, TaskReference],
        out: Path,
        num_envs: int = 4,
        config_hash: str = "",
        ckpt_hash: str = "",
        record_video: bool = False,
        trace: bool = False,
        on_episode_done: Callable[[EpisodeSpec, dict], None] | None = None,
    ):
        self.env_factory = env_factory
        self.policy = policy
        self.references = references
        self.out = Path(out)
        self.num_envs = max(1, int(num_envs))
        self.config_hash = config_hash
        self.ckpt_hash = ckpt_hash
        self.record_video = record_video
        self.trace = trace
        self.on_episode_done = on_episode_done
        self._envs: dict[tuple[int, str], Env] = {}
        self.stats = {"env_steps": 0, "renders": 0, "policy_calls": 0, "wall_s": 0.0}

    def _env(self, slot: int, task: str) -> Env:
        key = (slot, task)
        if key not in self._envs:
            self._envs[key] = self.env_factory(task)
        return self._envs[key]

    def run(self, specs: list[EpisodeSpec]) -> list[dict]:
        """Run every spec not already finished on disk; returns the records written now."""
        pending = deque(s for s in specs if not is_done(self.out, s))
        slots: list[_Slot | None] = [None] * self.num_envs
        written: list[dict] = []
        t0 = time.perf_counter()
        while pending or any(s is not None for s in slots):
            for i in range(self.num_envs):
                if slots[i] is None and pending:
                    spec = pending.popleft()
                    env = self._env(i, spec.task)
                    obs = env.reset(spec.instance, seed=spec.seed)
                    self.policy.reset(i, seed=spec.seed)  # the episode plays the same in any batch
                    slots[i] = _Slot(spec, env, obs)
                    if self.record_video:
                        slots[i].frames.append(_mosaic(obs))
            active = [i for i in range(self.num_envs) if slots[i] is not None]
            replanned = [self.policy.needs_observation(i) for i in active]
            obs_list = [slots[i].obs if r else None for i, r in zip(active, replanned)]
            stages = [_stage(self.policy, i) for i in active] if self.trace else None
            actions = np.asarray(self.policy.act(obs_list, env_ids=active), dtype=np.float32)
            self.stats["policy_calls"] += 1
            for j, i in enumerate(active):
                slot = slots[i]
                render = self.record_video or self.policy.needs_observation(i)
                obs, done, info = slot.env.step(actions[j], render=render)
                self.stats["env_steps"] += 1
                self.stats["renders"] += int(render)
                slot.steps += 1
                slot.obs, slot.info = obs, info
                if self.trace:
                    if replanned[j]:
                        slot.plan_stage = stages[j]
                    slot.trace.append(trace_row(slot.steps, replanned[j], slot.plan_stage, actions[j], info))
                if self.record_video and obs is not None:
                    slot.frames.append(_mosaic(obs))
                ref = self.references[slot.spec.task]
                if done or slot.steps >= ref.max_steps:
                    written.append(self._finish(slot, ref))
                    slots[i] = None
        self.stats["wall_s"] += time.perf_counter() - t0
        return written

    def _finish(self, slot: _Slot, ref: TaskReference) -> dict:
        info = slot.info
        rec = episode_record(
            slot.spec,
            q_score=float(info["q_score"]),
            success=bool(info["success"]),
            steps=slot.steps,
            predicates=dict(info.get("predicates", {})),
            agent_distance=dict(info.get("agent_distance", {"base": 0.0, "left": 0.0, "right": 0.0})),
            human_mean_steps=ref.human_mean_steps,
            human_distance=ref.human_distance,
            config_hash=self.config_hash,
            ckpt_hash=self.ckpt_hash,
            extra={"timed_out": not bool(info["success"]) and slot.steps >= ref.max_steps,
                   "max_steps": ref.max_steps,
                   **({DIAGNOSTICS_KEY: info[DIAGNOSTICS_KEY]} if DIAGNOSTICS_KEY in info else {})},
        )
        if self.record_video and slot.frames:
            from behavior_lab.eval.video import write_mosaic_video

            write_mosaic_video(self.out / "videos" / f"{slot.spec.stem}.mp4", slot.frames)
        if self.trace:
            write_trace(self.out / "traces" / f"{slot.spec.stem}.csv", slot.trace)
        atomic_write_json(metrics_path(self.out, slot.spec), rec)
        if self.on_episode_done:
            self.on_episode_done(slot.spec, rec)
        return rec


def _stage(policy, env_index: int) -> int | None:
    """The stage the policy conditions this env's chunk on, where it tracks one (PolicyRuntime)."""
    get = getattr(policy, "current_stage", None)
    return get(env_index) if callable(get) else None


def trace_row(step: int, replanned: bool, stage: int | None, action: np.ndarray, info: dict) -> dict:
    """One step of an episode trace: what the policy sent and what it achieved.

    Columns: ``step`` (1-based, after the action), ``replanned`` (the policy saw an observation and
    predicted a chunk at this step), ``stage`` (the stage the chunk was conditioned on; empty without
    System 2), ``a0..a22`` (the 23-D action, DESIGN §5), ``q_score``, and on the embedded suite
    ``held_left`` / ``held_right`` (the body each hand holds) and ``dist_<target>`` (m, the nearer
    hand's grasp point to each task object or button, sim/diagnostics.py)."""
    row = {"step": step, "replanned": int(bool(replanned)), "stage": "" if stage is None else int(stage)}
    row.update({f"a{k}": float(v) for k, v in enumerate(np.asarray(action, dtype=np.float64))})
    row["q_score"] = float(info.get("q_score", 0.0))
    now = info.get(STEP_DIAGNOSTICS_KEY)
    if now:
        for side, body in now["held"].items():
            row[f"held_{side}"] = body or ""
        row.update({f"dist_{k}": v for k, v in now["distance_m"].items()})
    return row


def write_trace(path: Path, rows: list[dict]) -> None:
    """The episode's rows as CSV, written whole (temp file + rename) like the metrics JSONs."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["step"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _mosaic(obs: dict | None) -> np.ndarray | None:
    """Head, left wrist, right wrist side by side at the head camera's height."""
    if obs is None:
        return None
    from behavior_lab.data.schema import OBS_RGB_KEYS

    imgs = [np.asarray(obs[k])[..., :3] for k in OBS_RGB_KEYS]
    h = imgs[0].shape[0]
    out = []
    for im in imgs:
        if im.shape[0] != h:
            idx = (np.arange(h) * im.shape[0] / h).astype(int)
            im = im[idx][:, (np.arange(int(im.shape[1] * h / im.shape[0])) * im.shape[0] / h).astype(int)]
        out.append(im)
    return np.concatenate(out, axis=1)
