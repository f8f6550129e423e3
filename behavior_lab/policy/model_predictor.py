"""`ModelChunkPredictor`: the real ChunkPredictor over a `PiBehavior` model (docs/interfaces.md).

Input side, per request (the seed's input transforms at inference, spec §8.2 steps 1-5, 8):
images resized to model resolution (openpi resize_with_pad, `behavior_lab.data.images`), the
23-D state normalised and padded to 32, `task_id`, the voted `stage` and `num_stages`.
Kept actions for inpainting go through the *full* input transform against the new state
(delta, per-timestep normalisation rows 0..k-1, pad; spec §9.1).
Output side: unnormalise per timestep, absolute actions against the raw state, truncate to 23
(spec §8.2 output transforms). All transforms are the data layer's (`behavior_lab.data.transforms`),
the same objects training uses.

One model call per `predict` — except that requests with and without kept actions (or with
different numbers of them) cannot share a call, because `initial_actions` is one (B, k, 32)
tensor for the whole batch; such a batch is split into one call per k.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from behavior_lab.data import schema
from behavior_lab.data import transforms as T
from behavior_lab.data.images import resize_with_pad
from behavior_lab.policy.predictor import ChunkPrediction, ChunkRequest


@dataclasses.dataclass(frozen=True)
class PredictorConfig:
    image_size: int = 224  # spec §1.2
    action_norm: str = "per_timestep"  # spec §8.2
    state_norm: str = "global"  # spec §8.2; "quantile" or "off" as in data/samples.py
    num_steps: int = 20  # spec §13.5
    max_prompt_tokens: int = 48

    @classmethod
    def from_cfg(cls, cfg: Any, num_steps: int | None = None, model_obj: Any = None) -> "PredictorConfig":
        """Read what the training run used: the model's own ModelConfig first (image size, prompt
        length, Euler steps), then the resolved config (config.yaml of the export) for the data keys."""
        root = _as_dict(cfg)
        model = dict(root.get("model", {}) or {})
        mcfg = getattr(model_obj, "cfg", None)
        if mcfg is not None and dataclasses.is_dataclass(mcfg):
            model = {**model, **dataclasses.asdict(mcfg)}
        data = root.get("data", {}) or {}
        kw: dict[str, Any] = {}
        size = _first(model.get("vision", {}), "image_size") or _first(data, "image_size")
        if size is not None:
            kw["image_size"] = int(size[0] if isinstance(size, (list, tuple)) else size)
        source_kwargs = data.get("source_kwargs") or {}  # ChunkSampleSource(action_norm=..., state_norm=...)
        for key, names in (("action_norm", ("action_norm", "action_norm_mode")), ("state_norm", ("state_norm", "state_norm_mode"))):
            v = _first(source_kwargs, *names)
            v = _first(data, *names) if v is None else v
            if v is not None:
                kw[key] = str(v)
        if model.get("max_prompt_tokens") is not None:
            kw["max_prompt_tokens"] = int(model["max_prompt_tokens"])
        if num_steps is not None:
            kw["num_steps"] = int(num_steps)
        else:
            steps = _first(model.get("flow", {}), "num_steps")
            if steps is not None:
                kw["num_steps"] = int(steps)
        return cls(**kw)


class ModelChunkPredictor:
    def __init__(self, model: Any, norm_stats: Any, cfg: Any = None, *, num_steps: int | None = None,
                 batch_invariant: bool = False) -> None:
        if norm_stats is None:
            raise ValueError("ModelChunkPredictor needs the checkpoint's NormStats (norm_stats.json)")
        self.model = model
        self.batch_invariant = bool(batch_invariant)  # one model call per request (RuntimeConfig)
        self.stats = norm_stats
        self.cfg = cfg if isinstance(cfg, PredictorConfig) else PredictorConfig.from_cfg(cfg, num_steps, model)
        mask = np.asarray(getattr(norm_stats, "delta_mask", schema.DELTA_ACTION_MASK), dtype=bool)
        # The delta mask the stats were computed with is the one training used (all False = absolute).
        self.delta = T.DeltaActions(mask=mask, enabled=bool(mask.any()))
        self.absolute = T.AbsoluteActions(mask=mask, enabled=bool(mask.any()))
        self.norm_actions = T.NormalizeActions.from_stats(norm_stats, self.cfg.action_norm)
        self.unnorm_actions = T.UnnormalizeActions.from_stats(norm_stats, self.cfg.action_norm)
        # state_norm "off" (a data ablation, data/samples.py): the raw state, padded.
        self.norm_state = T.NormalizeState.from_stats(
            norm_stats, "global" if self.cfg.state_norm == "off" else self.cfg.state_norm,
            enabled=self.cfg.state_norm != "off",
        )
        self.pad = T.PadTo(schema.PADDED_DIM)
        self.truncate = T.TruncateTo(schema.ACTION_DIM)
        self._tokenizer = None
        model_cfg = getattr(model, "cfg", None)
        self.task_info_dim = int(getattr(model_cfg, "task_info_dim", 0) or 0)  # > 0: privileged mode

    @property
    def needs_task_info(self) -> bool:
        return self.task_info_dim > 0

    # --- input side -------------------------------------------------------------------------------
    def build_batch(self, requests: Sequence[ChunkRequest]) -> dict[str, np.ndarray]:
        size = self.cfg.image_size
        images = np.stack(
            [np.stack([resize_with_pad(im, size) for im in r.images]) for r in requests]
        )  # (B, 3, H, W, 3) uint8
        raw_state = np.stack([np.asarray(r.state, dtype=np.float64) for r in requests])  # (B, 23)
        state = T.apply([self.norm_state, self.pad], {"state": raw_state})["state"].astype(np.float32)
        batch = {
            "images": images,
            "image_mask": np.ones((len(requests), images.shape[1]), dtype=bool),
            "state": state,  # (B, 32)
            "task_id": np.array([r.task_id for r in requests], dtype=np.int64),
            "stage": np.array([r.stage for r in requests], dtype=np.int64),
            "num_stages": np.array([r.num_stages for r in requests], dtype=np.int64),
        }
        batch.update(self._prompt(requests))
        if self.task_info_dim:
            missing = [i for i, r in enumerate(requests) if r.task_info is None]
            if missing:
                raise ValueError(f"requests {missing} carry no task_info; this model (privileged observation "
                                 f"mode) needs a {self.task_info_dim}-D task_info per request")
            batch["task_info"] = np.stack([np.asarray(r.task_info, dtype=np.float32) for r in requests])
        return batch

    def initial_actions(self, requests: Sequence[ChunkRequest]) -> np.ndarray | None:
        """(B, k, 32) normalised kept actions against each request's *current* state (spec §9.1)."""
        kept = [r.initial_actions for r in requests]
        if kept[0] is None:
            return None
        data = {"actions": np.stack([np.asarray(k, dtype=np.float64) for k in kept]),
                "state": np.stack([np.asarray(r.state, dtype=np.float64) for r in requests])}
        out = T.apply([self.delta, self.norm_actions, self.pad], data)
        return np.asarray(out["actions"], dtype=np.float32)

    def to_absolute(self, normalised: np.ndarray, requests: Sequence[ChunkRequest]) -> np.ndarray:
        """(B, H, 32) normalised model output -> (B, H, 23) absolute actions (spec §8.2 outputs)."""
        data = {"actions": np.asarray(normalised, dtype=np.float64),
                "state": np.stack([np.asarray(r.state, dtype=np.float64) for r in requests])}
        out = T.apply([self.unnorm_actions, self.absolute, self.truncate], data)
        return np.asarray(out["actions"], dtype=np.float32)

    # --- the call ---------------------------------------------------------------------------------
    def predict(self, requests: Sequence[ChunkRequest]) -> ChunkPrediction:
        groups: dict[object, list[int]] = {}
        for i, r in enumerate(requests):
            key = ("alone", i) if self.batch_invariant else 0 if r.initial_actions is None else len(r.initial_actions)
            groups.setdefault(key, []).append(i)
        actions: list[np.ndarray | None] = [None] * len(requests)
        logits: list[np.ndarray | None] = [None] * len(requests)
        for idx in groups.values():
            sub = [requests[i] for i in idx]
            a, lg = self._predict_group(sub)
            for j, i in enumerate(idx):
                actions[i] = a[j]
                logits[i] = None if lg is None else lg[j]
        stage_logits = None if any(lg is None for lg in logits) else np.stack(logits)  # type: ignore[arg-type]
        return ChunkPrediction(actions=np.stack(actions), stage_logits=stage_logits)  # type: ignore[arg-type]

    def _predict_group(self, requests: Sequence[ChunkRequest]) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        batch = self.build_batch(requests)
        init = self.initial_actions(requests)
        device = _model_device(self.model)
        tb = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}
        ti = None if init is None else torch.from_numpy(init).to(device)
        with torch.inference_mode():
            noise = self.initial_noise(requests, device)
            out = self.model.sample_actions(tb, num_steps=self.cfg.num_steps, noise=noise, initial_actions=ti)
        norm = out["actions"].float().cpu().numpy()  # (B, H, 32)
        lg = out.get("stage_logits") if isinstance(out, Mapping) else None
        lg = None if lg is None else lg.float().cpu().numpy()
        return self.to_absolute(norm, requests), lg

    def initial_noise(self, requests: Sequence[ChunkRequest], device):
        """(B, H, D) flow noise x_1, one row per request from its own ``noise_seed`` (the global RNG
        for rows without one), drawn through the model's noise sampler (correlated noise included);
        None when no request has a seed (the model then draws the whole batch itself)."""
        import torch

        seeds = [r.noise_seed for r in requests]
        if all(s is None for s in seeds):
            return None
        model_cfg = self.model.cfg
        shape = (1, int(model_cfg.action_horizon), int(model_cfg.action_dim))
        sampler = getattr(self.model, "noise", None)
        rows = []
        for s in seeds:
            g = None if s is None else torch.Generator(device=device).manual_seed(int(s))
            if sampler is None:
                rows.append(torch.randn(shape, generator=g, device=device))
            else:
                rows.append(sampler.sample(shape, generator=g, device=device))
        return torch.cat(rows).float()

    def _prompt(self, requests: Sequence[ChunkRequest]) -> dict[str, np.ndarray]:
        """Text prompt tokens for models conditioned on text (innovation task_embeddings=off)."""
        if not _uses_text_prompt(self.model):
            return {}
        if self._tokenizer is None:
            from behavior_lab.models.tokenizer import ByteTokenizer

            self._tokenizer = ByteTokenizer(max_len=self.cfg.max_prompt_tokens)
        texts = [schema.task_name(r.task_id).replace("_", " ") for r in requests]
        # Same prompts as training (training/datamodule.py `prompt_table`): task name with spaces.
        encode = getattr(self._tokenizer, "encode_batch", None) or self._tokenizer.encode
        tokens, mask = encode(texts)
        return {"prompt_tokens": np.asarray(tokens, dtype=np.int64), "prompt_mask": np.asarray(mask, dtype=bool)}


def _uses_text_prompt(model: Any) -> bool:
    from behavior_lab.innovations.task_conditioning import TextPromptConditioning

    modules = getattr(model, "modules", None)
    return callable(modules) and any(isinstance(m, TextPromptConditioning) for m in model.modules())


def _model_device(model: Any):
    import torch

    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def _first(node: Any, *names: str) -> Any:
    if not isinstance(node, Mapping):
        return None
    for n in names:
        if node.get(n) is not None:
            return node[n]
    return None


def _as_dict(cfg: Any) -> dict:
    if cfg is None:
        return {}
    if isinstance(cfg, Mapping) and not hasattr(cfg, "_metadata"):
        return dict(cfg)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
