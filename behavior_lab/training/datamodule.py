"""LightningDataModule over the data layer (docs/interfaces.md: ChunkSampleSource, NormStats).

- Task subset: ``tasks`` (names or ids; None = every task in the dataset).
- Train/val split by *episode*, deterministic: per task, a permutation seeded by (split_seed, task)
  puts ``val_fraction`` of its episodes (at least one when the task has two or more) in validation.
  Frames of one episode never appear in both splits.
- Training order: ``StepSeededSampler`` — sample k of the run is a pure function of (seed, k), so a
  resumed run continues exactly where the killed one stopped (see sampler.py).
- Validation: a fixed, evenly spaced subset of the held-out frames (``val_max_samples``).
- Augmentation (spec §12.4): on the device, after transfer, in ``on_after_batch_transfer``, training
  batches only, with a generator seeded by (seed, global_step) — a switch: ``augment.enabled``.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from behavior_lab.machine import cpu_cores
from behavior_lab.training.augment import AugmentConfig, ImageAugmenter
from behavior_lab.training.sampler import StepSeededSampler

DEFAULT_SOURCE = "behavior_lab.data.samples.ChunkSampleSource"


def _import(path: str):
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"data.source={path!r} cannot be imported ({e})") from e


def resolve_num_workers(num_workers: int | str) -> int:
    """``auto``: no worker processes on <= 2 cores (measured: workers only add IPC there, see bench),
    otherwise one per spare core up to 8."""
    if num_workers != "auto":
        return int(num_workers)
    cores = cpu_cores()
    return 0 if cores <= 2 else min(8, cores - 1)


def split_episodes(
    episodes_by_task: Mapping[int, Sequence[int]], val_fraction: float, split_seed: int
) -> tuple[list[int], list[int]]:
    """Deterministic per-task episode split -> (train, val) episode indices, each sorted."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    train, val = [], []
    for task in sorted(episodes_by_task):
        eps = sorted(int(e) for e in episodes_by_task[task])
        n_val = 0
        if val_fraction > 0 and len(eps) >= 2:
            n_val = min(len(eps) - 1, max(1, int(round(val_fraction * len(eps)))))
        order = np.random.default_rng([int(split_seed), int(task)]).permutation(len(eps))
        chosen = {eps[i] for i in order[:n_val]}
        val += [e for e in eps if e in chosen]
        train += [e for e in eps if e not in chosen]
    return sorted(train), sorted(val)


class TaskBalancedView(Dataset):
    """Every task equally likely per training sample, whatever its demonstrations' lengths.

    The seed samples frames uniformly (spec §12.3), so a task with 3x longer demos gets 3x the
    updates. This view lays the tasks side by side in blocks of M = the largest task's sample count:
    virtual index v -> task v // M, its sample (v % M) mod n_task (shorter tasks repeat, cyclically).
    It is a plain map of fixed length, so StepSeededSampler's order and exact resume are unchanged.
    Needs `task_ids`, `offsets` (per episode slot) on the source, as ChunkSampleSource has.
    """

    def __init__(self, source) -> None:
        for attr in ("task_ids", "offsets"):
            if not hasattr(source, attr):
                raise TypeError(
                    f"data.balance_tasks=true needs a source with `{attr}` per episode slot "
                    f"({type(source).__name__} has none)"
                )
        self.source = source
        per_task: dict[int, list[np.ndarray]] = {}
        for slot, task in enumerate(np.asarray(source.task_ids).tolist()):
            per_task.setdefault(int(task), []).append(np.arange(source.offsets[slot], source.offsets[slot + 1]))
        self.tasks = sorted(per_task)
        self.samples = [np.concatenate(per_task[t]) for t in self.tasks]
        self.block = max(len(x) for x in self.samples)

    def __len__(self) -> int:
        return self.block * len(self.tasks)

    def __getitem__(self, index: int):
        k, j = divmod(int(index), self.block)
        if not 0 <= k < len(self.tasks):
            raise IndexError(f"sample {index} out of range (0..{len(self) - 1})")
        idx = self.samples[k]
        return self.source[int(idx[j % len(idx)])]

    def __getattr__(self, name: str):  # num_stages, stats, ... of the wrapped source
        if name in ("source", "__setstate__"):
            raise AttributeError(name)
        return getattr(self.source, name)


class BehaviorDataModule(pl.LightningDataModule):
    def __init__(
        self,
        root: str,
        tasks: Sequence[str | int] | None = None,
        batch_size: int = 16,
        val_batch_size: int | None = None,
        num_workers: int | str = "auto",
        image_size: int = 224,
        cache_dir: str | None = None,
        val_fraction: float = 0.1,
        val_max_samples: int | None = 256,
        split_seed: int = 0,
        seed: int = 0,
        augment: Mapping[str, Any] | None = None,
        source: str = DEFAULT_SOURCE,
        source_kwargs: Mapping[str, Any] | None = None,
        pin_memory: bool = False,
        prompt_max_tokens: int | None = None,
        balance_tasks: bool = False,
    ) -> None:
        super().__init__()
        if root is None or str(root) in ("", "???"):
            raise ValueError("data.root is required: behavior-lab train data.root=DIR out=DIR")
        self.root = str(root)
        self.tasks = None if tasks is None else list(tasks)
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.num_workers = resolve_num_workers(num_workers)
        self.image_size = int(image_size)
        self.cache_dir = cache_dir
        self.val_fraction = float(val_fraction)
        self.val_max_samples = val_max_samples
        self.split_seed = int(split_seed)
        self.seed = int(seed)
        self.augmenter = ImageAugmenter(AugmentConfig(**dict(augment or {})))
        self.source_cls = _import(source) if isinstance(source, str) else source
        self.source_kwargs = dict(source_kwargs or {})
        self.pin_memory = pin_memory
        self.prompt_max_tokens = prompt_max_tokens
        self.balance_tasks = bool(balance_tasks)
        self._prompt_table: tuple[torch.Tensor, torch.Tensor] | None = None
        self._resume_position: int | None = None
        self.norm_stats = None
        self.train_source = None
        self.val_source = None
        self.train_episodes: list[int] = []
        self.val_episodes: list[int] = []

    # --- data ----------------------------------------------------------------------------------------
    def load_norm_stats(self):
        if self.norm_stats is None:
            from behavior_lab.data.stats import NormStats

            self.norm_stats = NormStats.load(self.root)
        return self.norm_stats

    def episodes_by_task(self) -> dict[int, list[int]]:
        from behavior_lab.data.reader import BehaviorDataset

        ds = BehaviorDataset(self.root, tasks=self.tasks)
        out: dict[int, list[int]] = {}
        for ep in ds.episode_indices:
            out.setdefault(ds.task_of(ep), []).append(ep)
        if not out:
            raise ValueError(f"data.root={self.root} with data.tasks={self.tasks} selects no episodes")
        return out

    def _make_source(self, episodes: list[int]):
        return self.source_cls(
            self.root,
            self.load_norm_stats(),
            self.image_size,
            cache_dir=self.cache_dir,
            episodes=episodes,
            **self.source_kwargs,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_source is not None:
            return
        self.train_episodes, self.val_episodes = split_episodes(
            self.episodes_by_task(), self.val_fraction, self.split_seed
        )
        self.train_source = self._make_source(self.train_episodes)
        if self.balance_tasks:
            self.train_source = TaskBalancedView(self.train_source)
        self.val_source = self._make_source(self.val_episodes) if self.val_episodes else None

    # --- loaders -------------------------------------------------------------------------------------
    def _world(self) -> tuple[int, int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1, 0
        accumulate = getattr(trainer, "accumulate_grad_batches", 1) or 1
        return trainer.global_rank, trainer.world_size, trainer.global_step * accumulate

    def samples_consumed(self) -> int:
        """Global sample position reached by the run (all ranks), from the optimizer step count."""
        _, world, batches_done = self._world()
        return batches_done * self.batch_size * world

    def train_dataloader(self) -> DataLoader:
        rank, world, _ = self._world()
        # a checkpoint records the position; a fresh run starts at 0 (global_step is 0 then)
        start = self._resume_position if self._resume_position is not None else self.samples_consumed()
        sampler = StepSeededSampler(
            len(self.train_source),
            seed=self.seed,
            start=start,
            rank=rank,
            world_size=world,
        )
        return DataLoader(
            self.train_source,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=True,
            persistent_workers=self.num_workers > 0,
        )

    def val_indices(self) -> list[int]:
        n = len(self.val_source)
        if self.val_max_samples is None or n <= self.val_max_samples:
            return list(range(n))
        return np.linspace(0, n - 1, int(self.val_max_samples)).round().astype(int).tolist()

    def val_dataloader(self) -> DataLoader | list:
        if self.val_source is None or len(self.val_source) == 0:
            return []
        return DataLoader(
            Subset(self.val_source, self.val_indices()),
            batch_size=self.val_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    # --- text prompts (task_embeddings=off) --------------------------------------------------------
    def prompt_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(50, L) tokens and mask of every task's prompt, exactly as the policy runtime builds them
        (behavior_lab.policy.model_predictor: task name with spaces, ByteTokenizer)."""
        if self._prompt_table is None:
            from behavior_lab.data import schema
            from behavior_lab.models.tokenizer import ByteTokenizer

            tok = ByteTokenizer(max_len=int(self.prompt_max_tokens))
            tokens, mask = tok.encode([n.replace("_", " ") for n in schema.TASK_NAMES])
            self._prompt_table = (torch.as_tensor(np.asarray(tokens), dtype=torch.long),
                                  torch.as_tensor(np.asarray(mask), dtype=torch.bool))
        return self._prompt_table

    def add_prompts(self, batch: dict) -> dict:
        tokens, mask = self.prompt_table()
        tid = batch["task_id"].long().reshape(-1)
        batch["prompt_tokens"] = tokens.to(tid.device)[tid]
        batch["prompt_mask"] = mask.to(tid.device)[tid]
        return batch

    # --- augmentation --------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.prompt_max_tokens and isinstance(batch, dict) and "task_id" in batch:
            batch = self.add_prompts(batch)
        trainer = self.trainer
        if trainer is None or not trainer.training or not self.augmenter.cfg.enabled or "images" not in batch:
            return batch
        from behavior_lab.training.module import step_seed

        images = batch["images"]
        gen = torch.Generator(device=images.device)
        gen.manual_seed(step_seed(self.seed, trainer.global_step, trainer.global_rank, stream=2))
        batch["images"] = self.augmenter(images, generator=gen)
        return batch

    # --- checkpoint ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Sampler state: the global sample position plus what it is valid for (seed, split, size),
        checked on load. The position stays right if a run is resumed with another batch size."""
        return {
            "seed": self.seed,
            "split_seed": self.split_seed,
            "samples_consumed": self.samples_consumed(),
            "num_train_samples": None if self.train_source is None else len(self.train_source),
            "val_episodes": list(self.val_episodes),
        }

    def load_state_dict(self, state: dict) -> None:
        if int(state["seed"]) != self.seed or int(state["split_seed"]) != self.split_seed:
            raise ValueError(
                f"checkpoint was trained with data.seed={state['seed']} split_seed={state['split_seed']}; "
                f"this run has {self.seed}/{self.split_seed} — resuming would not continue the same sample order"
            )
        n = state.get("num_train_samples")
        if n is not None and self.train_source is not None and int(n) != len(self.train_source):
            raise ValueError(
                f"checkpoint was trained on {n} training samples, this run has {len(self.train_source)}; "
                "resume with the same data.root, data.tasks and data.val_fraction"
            )
        self._resume_position = int(state["samples_consumed"])
