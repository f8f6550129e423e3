"""The inference runtime: observation dicts -> one 23-D action per environment per 30 Hz step.

Port of the seed's `B1KPolicyWrapper.act` (spec §10, §13), generalised to B environments that
share one model: at each step every environment whose plan is used up replans, and all of them
go through ONE `ChunkPredictor.predict` call. Per replan and environment, in the seed's order:

1. the chunk is predicted with the *current* voted stage and the kept actions (spec §6.4, §9.1);
2. correction rules may replace the chunk and overwrite the stage (spec §11);
3. the gripper gate decides whether this chunk is compressed (spec §10 step 1);
4. the kept actions [e, e + k) are stored before compression, e = 26 or 20 (spec §9.1);
5. the first 26 actions become 20 spline steps, base velocity x 1.3 (spec §10), or 20 are taken 1:1;
6. the stage voter sees the new stage logits (spec §6.4), for the *next* replan.

A task change (the observation's `task_id` differs from the previous one) resets the stage, the
vote history, the plan and the kept actions (spec §13.4); a checkpoint switch, if any, happens in
the predictor (`switching.TaskCheckpointSwitcher`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from behavior_lab.data import schema
from behavior_lab.policy.config import RuntimeConfig
from behavior_lab.policy.corrections import GripperCorrector
from behavior_lab.policy.inpainting import InpaintingBuffer
from behavior_lab.policy.observation import ObservationError, ParsedObservation, parse_observation
from behavior_lab.policy.predictor import ChunkPrediction, ChunkPredictor, ChunkRequest
from behavior_lab.policy.spline import GripperVariationGate, SplineCompressor
from behavior_lab.policy.stage_voter import StageVoter


GRIPPER_DIMS = [schema.LEFT_GRIPPER_DIM, schema.RIGHT_GRIPPER_DIM]


@dataclasses.dataclass
class EnvSession:
    """Everything the runtime remembers about one environment's episode."""

    voter: StageVoter
    inpainting: InpaintingBuffer
    task_id: int | None = None
    plan: np.ndarray | None = None  # (execute_in_n_steps, 23) actions still to play
    index: int = 0  # next action of `plan`
    steps: int = 0
    replans: int = 0
    seed: int | None = None  # episode seed: chunk r draws its flow noise from (seed, r); None = global RNG
    # the gripper commands last sent (left, right), for policy.gripper_latch
    latched: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(len(GRIPPER_DIMS)))
    # What happened at the last replan (for logs and tests).
    last_rule: str | None = None
    last_compressed: bool | None = None

    @property
    def stage(self) -> int:
        return self.voter.current_stage

    def reset(self) -> None:
        """Episode boundary or task change: no plan, no kept actions, stage 0 (spec §6.4, §13.4)."""
        self.voter.reset()
        self.inpainting.reset()
        self.plan = None
        self.index = 0
        self.steps = 0
        self.replans = 0
        self.last_rule = None
        self.last_compressed = None
        self.latched = np.ones(len(GRIPPER_DIMS))


class PolicyRuntime:
    """`act(obs_list, env_ids=None) -> (B, 23) float32`, `needs_observation(env_index)`,
    `reset(env_index=None)` (docs/interfaces.md, incl. the eval addendum)."""

    def __init__(
        self,
        model: Any,
        norm_stats: Any = None,
        cfg: Any = None,
        *,
        task_num_stages: Mapping[int, int] | None = None,
    ) -> None:
        self.cfg = RuntimeConfig.from_cfg(cfg)
        if isinstance(model, ChunkPredictor):
            self.predictor: ChunkPredictor = model
        else:
            from behavior_lab.policy.model_predictor import ModelChunkPredictor

            self.predictor = ModelChunkPredictor(model, norm_stats, cfg, num_steps=self.cfg.num_steps,
                                                 batch_invariant=self.cfg.batch_invariant)
        self._task_num_stages = _resolve_num_stages(task_num_stages, norm_stats, cfg)
        # privileged observation mode: every observation must carry schema.TASK_INFO_KEY
        self._needs_task_info = bool(getattr(self.predictor, "needs_task_info", False))
        steps = self.cfg.replan.execute_in_n_steps
        self.compressor = SplineCompressor(self.cfg.spline, execute_in_n_steps=steps)
        self.gate = GripperVariationGate(self.cfg.gate, num_actions=self.cfg.spline.actions_to_execute)
        self.corrector = GripperCorrector(self.cfg.corrections)
        self.sessions: list[EnvSession] = []

    # --- public API -------------------------------------------------------------------------------
    def num_stages(self, task_id: int) -> int:
        return int(self._task_num_stages.get(task_id, schema.SEED_TASK_NUM_STAGES[task_id]))

    def reset(self, env_index: int | None = None, seed: int | None = None) -> None:
        """New episode for one env (or all). With ``seed``, that env's chunks draw their flow noise
        from ``(seed, replan index)`` instead of the global RNG, so an episode plays the same
        whatever other envs share its batched model calls (the eval runner passes each episode's
        seed); with ``env_index=None`` every env gets ``seed``."""
        targets = self.sessions if env_index is None else None
        if targets is None:
            self._ensure_sessions(env_index + 1)
            targets = [self.sessions[env_index]]
        for s in targets:
            s.reset()
            s.seed = None if seed is None else int(seed)

    def current_stage(self, env_index: int) -> int | None:
        """The stage this env's next chunk is conditioned on (None before its first act)."""
        return self.sessions[env_index].stage if env_index < len(self.sessions) else None

    def needs_observation(self, env_index: int) -> bool:
        """True when the next `act` for this env replans (no plan yet, or the plan is used up),
        so the caller must render and pass its observation (docs/interfaces.md addendum)."""
        if env_index >= len(self.sessions):
            return True
        sess = self.sessions[env_index]
        return sess.plan is None or sess.index >= len(sess.plan)

    def act(
        self, obs_list: Sequence[Mapping[str, Any] | None], env_ids: Sequence[int] | None = None
    ) -> np.ndarray:
        """One step for the envs `env_ids` (default 0..n-1): (len(obs_list), 23) float32.

        `obs_list[j]` belongs to env `env_ids[j]`; it may be None when that env's
        `needs_observation` is False (it just plays its next planned action). Only the listed envs
        advance. The observations are all checked before any state changes.
        """
        if isinstance(obs_list, Mapping):
            raise TypeError("PolicyRuntime.act takes a list of observation dicts (one per environment)")
        if len(obs_list) == 0:
            raise ValueError("PolicyRuntime.act got an empty observation list")
        ids = list(range(len(obs_list))) if env_ids is None else [int(i) for i in env_ids]
        if len(ids) != len(obs_list) or len(set(ids)) != len(ids) or min(ids) < 0:
            raise ValueError(f"env_ids {list(env_ids or [])} must be distinct, >= 0 and one per observation")
        oracle_key = self.cfg.voting.oracle_key if self.cfg.voting.mode == "oracle" else None
        parsed: dict[int, ParsedObservation] = {}
        for i, obs in zip(ids, obs_list):
            if obs is None:
                if self.needs_observation(i):
                    raise ObservationError(f"environment {i} replans at this step and needs an observation")
                continue
            try:
                parsed[i] = parse_observation(obs, self.cfg.default_task_id, oracle_key,
                                              require_task_info=self._needs_task_info)
            except ObservationError as exc:
                raise ObservationError(f"environment {i}: {exc}") from None
        self._ensure_sessions(max(ids) + 1)

        for i, p in parsed.items():
            sess = self.sessions[i]
            if sess.task_id != p.task_id:
                sess.reset()  # spec §13.4: a task change resets stage, votes, plan, kept actions
                sess.task_id = p.task_id
            if p.oracle_stage is not None:
                sess.voter.observe_oracle(p.oracle_stage, self.num_stages(p.task_id))

        replan = [i for i in ids if self.needs_observation(i)]
        if replan:
            requests = [self._request(self.sessions[i], parsed[i]) for i in replan]
            prediction = self.predictor.predict(requests)
            self._check_prediction(prediction, len(requests))
            for j, i in enumerate(replan):
                logits = None if prediction.stage_logits is None else np.asarray(prediction.stage_logits[j])
                self._new_plan(self.sessions[i], parsed[i], np.asarray(prediction.actions[j]), logits)

        out = np.empty((len(ids), schema.ACTION_DIM), dtype=np.float32)
        for j, i in enumerate(ids):
            sess = self.sessions[i]
            out[j] = sess.plan[sess.index, : schema.ACTION_DIM]
            if self.cfg.gripper_latch.enabled:
                out[j, GRIPPER_DIMS] = self._latch(sess, out[j, GRIPPER_DIMS])
            sess.index += 1
            sess.steps += 1
        return out

    # --- internals --------------------------------------------------------------------------------
    def _ensure_sessions(self, n: int) -> None:
        while len(self.sessions) < n:
            self.sessions.append(
                EnvSession(voter=StageVoter(self.cfg.voting), inpainting=InpaintingBuffer(self.cfg.inpainting))
            )

    def _latch(self, sess: EnvSession, planned: np.ndarray) -> np.ndarray:
        """policy.gripper_latch: +-1 with hysteresis around 0 (config.GripperLatchConfig)."""
        t = self.cfg.gripper_latch.threshold
        sess.latched = np.where(planned < -t, -1.0, np.where(planned > t, 1.0, sess.latched))
        return sess.latched

    def _request(self, sess: EnvSession, p: ParsedObservation) -> ChunkRequest:
        return ChunkRequest(
            images=p.images,
            state=p.state,
            task_id=p.task_id,
            stage=sess.stage,
            num_stages=self.num_stages(p.task_id),
            initial_actions=sess.inpainting.take(),
            task_info=p.task_info,
            noise_seed=None if sess.seed is None else chunk_noise_seed(sess.seed, sess.replans),
        )

    def _check_prediction(self, prediction: ChunkPrediction, n: int) -> None:
        a = np.asarray(prediction.actions)
        need = max(
            self.cfg.executed_actions(self.compressor.active)
            + (self.cfg.inpainting.actions_to_keep if self.cfg.inpainting.enabled else 0),
            self.cfg.replan.execute_in_n_steps,
        )
        if a.shape[0] != n or a.shape[1] < need or a.shape[2] < schema.ACTION_DIM:
            raise ValueError(
                f"the predictor returned actions of shape {a.shape}; expected ({n}, >= {need}, >= "
                f"{schema.ACTION_DIM}) for {n} replanning environments"
            )

    def _new_plan(self, sess: EnvSession, p: ParsedObservation, chunk: np.ndarray, logits) -> None:
        actions = chunk[:, : schema.ACTION_DIM].astype(np.float64)
        stage = sess.stage
        fixed = self.corrector.apply(p.task_id, stage, p.state, actions)  # spec §11
        if fixed.stage != stage:
            sess.voter.set_stage(fixed.stage)  # spec §11.2: stage overwritten, votes cleared
        actions = fixed.actions
        compress = self.compressor.active and self.gate.allows_compression(actions)  # spec §10 step 1
        executed = self.cfg.executed_actions(compress)
        sess.inpainting.store(actions, executed)  # spec §9.1: before compression
        if compress:
            sess.plan = self.compressor.compress(actions)
        else:
            sess.plan = actions[: self.cfg.replan.execute_in_n_steps].copy()
        sess.index = 0
        sess.replans += 1
        sess.last_rule = fixed.rule
        sess.last_compressed = compress
        sess.voter.update(logits, self.num_stages(p.task_id))  # spec §6.4: after acting with the old stage


def chunk_noise_seed(episode_seed: int, replan: int) -> int:
    """The flow-noise seed of an episode's ``replan``-th chunk (a 63-bit mix of both)."""
    state = np.random.SeedSequence([int(episode_seed) & (2**64 - 1), int(replan)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def _resolve_num_stages(explicit: Mapping[int, int] | None, norm_stats: Any, cfg: Any) -> dict[int, int]:
    """S_task per task, as training saw it: an explicit map; else the training run's
    `data.source_kwargs.stage_table` ("seed" or {task: S}) over the stats; else the data's
    `task_num_stages`; tasks missing there use the seed table (spec §6.1)."""
    if explicit is not None:
        return {int(k): int(v) for k, v in explicit.items()}
    table = _select(cfg, "data", "source_kwargs", "stage_table")
    if table is not None:
        if table == "seed":
            return dict(enumerate(schema.SEED_TASK_NUM_STAGES))
        out = dict(getattr(norm_stats, "task_num_stages", None) or {})
        out.update({schema.task_id(k): int(v) for k, v in dict(table).items()})
        return out
    from_stats = getattr(norm_stats, "task_num_stages", None)
    if from_stats:
        return {int(k): int(v) for k, v in dict(from_stats).items()}
    return dict(enumerate(schema.SEED_TASK_NUM_STAGES))


def _select(cfg: Any, *path: str) -> Any:
    node = cfg
    for key in path:
        try:
            node = node.get(key) if node is not None else None
        except AttributeError:
            return None
    return node
