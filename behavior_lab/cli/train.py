"""`behavior-lab train data.root=DIR out=DIR [experiment=NAME] [innovation/<name>=on|off] [trainer.max_steps=N]`

Composes model + data + trainer, fits, and exports the EMA weights (docs/interfaces.md). The LAST line
printed is the exported checkpoint directory. Re-running the same command with `resume=auto` (default)
continues from `<out>/checkpoints/last.ckpt` when it exists: a killed run is resumed, not restarted.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def _checkpoint_step(path: Path) -> int:
    import torch

    try:  # memory-mapped: only the small header values are read, not the weights
        ckpt = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except Exception as e:  # noqa: BLE001 - name the file whatever torch raised
        raise RuntimeError(f"resume=auto: cannot read {path} ({type(e).__name__}: {e}); remove it or pass "
                           "resume=<a checkpoint file>") from e
    if "global_step" not in ckpt:
        raise RuntimeError(f"resume=auto: {path} is not a Lightning training checkpoint (no 'global_step')")
    return int(ckpt["global_step"])


def _resume_path(resume, out: Path) -> str | None:
    if resume in (None, False, "none", "null", ""):
        return None
    if resume == "auto":
        # A run folder written before build() stopped Lightning's version counter may hold a last-v1.ckpt
        # beside a stale last.ckpt (the run was resumed after the folder was moved or copied): take the
        # furthest-trained one, not blindly last.ckpt.
        lasts = sorted((out / "checkpoints").glob("last*.ckpt"))
        if not lasts:
            return None
        if len(lasts) == 1:
            return str(lasts[0])
        steps = {p: _checkpoint_step(p) for p in lasts}
        best = max(lasts, key=lambda p: (steps[p], p.name == "last.ckpt"))
        print(f"resume=auto: {len(lasts)} 'last' checkpoints in {out / 'checkpoints'} ("
              + ", ".join(f"{p.name} at step {steps[p]}" for p in lasts) + f"); resuming from {best.name}",
              flush=True)
        return str(best)
    path = Path(str(resume))
    if not path.is_file():
        raise FileNotFoundError(f"resume={resume}: no such checkpoint file")
    return str(path)


def _on(cfg: DictConfig, innovation: str) -> bool:
    return bool(OmegaConf.select(cfg, f"innovation.{innovation}.enabled", default=False))


def data_kwargs_for_innovations(cfg: DictConfig) -> dict:
    """What the batches must carry for the model's innovations: FAST tokens when fast_aux is on
    (tokenizer from <data.root>/meta/fast_tokenizer), text prompt tokens when task_embeddings is off,
    the privileged task_info vector when model.task_info_dim > 0."""
    node = cfg.data.get("source_kwargs")
    source_kwargs = dict(OmegaConf.to_container(node, resolve=True)) if node else {}
    if _on(cfg, "fast_aux"):
        source_kwargs.setdefault("fast_tokenizer", True)
        source_kwargs.setdefault("max_fast_tokens", int(cfg.innovation.fast_aux.get("max_tokens", 200)))
    if int(OmegaConf.select(cfg, "model.task_info_dim", default=0) or 0) > 0:
        source_kwargs.setdefault("task_info", True)  # privileged observation mode (DESIGN §8 lever 5)
    out = {"source_kwargs": source_kwargs}
    if not _on(cfg, "task_embeddings"):
        out["prompt_max_tokens"] = int(cfg.model.max_prompt_tokens)
    return out


def init_from_checkpoint(model, path: str) -> None:
    """Load a local pi05_base (openpi-converted / LeRobot safetensors) into `model` (spec §12.2):
    matching tensors are copied, modules new to PiBehavior keep their initialisation; the key report
    is printed. A later resume (last.ckpt) restores the trained weights over this."""
    from behavior_lab.models.checkpoint import load_pi05_base

    if not Path(path).exists():
        raise FileNotFoundError(f"init_from={path}: no such checkpoint file or directory")
    report = load_pi05_base(model, path)
    print(f"init_from {path}: {report.summary()}", flush=True)
    if not report.loaded:
        raise ValueError(f"init_from={path}: no tensor matched this model ({report.summary()})")


def build(cfg: DictConfig, extra_callbacks: list | None = None):
    """(trainer, module, datamodule, ema) for a composed train config; shared by run() and tests."""
    import lightning.pytorch as pl
    import torch
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ModelCheckpoint

    from behavior_lab.models.factory import build_model
    from behavior_lab.training.callbacks import StepProgressBar, ThroughputMonitor
    from behavior_lab.training.ema import EMACallback
    from behavior_lab.training.loggers import build_loggers
    from behavior_lab.training.module import PolicyModule

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    out = Path(cfg.out)
    datamodule = instantiate(cfg.data, _convert_="partial", **data_kwargs_for_innovations(cfg))
    norm_stats = datamodule.load_norm_stats()
    chol = norm_stats.correlation_cholesky if _on(cfg, "correlated_noise") else None
    model = build_model(cfg.model, cfg.get("innovation"), correlation_cholesky=chol)
    if cfg.get("init_from"):
        init_from_checkpoint(model, str(cfg.init_from))
    module = PolicyModule(model, optim=OmegaConf.to_container(cfg.optim, resolve=True), seed=int(cfg.seed))

    callbacks = [ThroughputMonitor()]
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(StepProgressBar(refresh_rate=int(cfg.get("progress_refresh", 1))))
    ema = None
    if cfg.ema.get("decay") is not None:
        ema = EMACallback(decay=float(cfg.ema.decay), validate_with_ema=bool(cfg.ema.validate_with_ema))
        callbacks.append(ema)
    callbacks.append(
        ModelCheckpoint(
            dirpath=str(out / "checkpoints"),
            filename="step{step:07d}",
            auto_insert_metric_name=False,
            every_n_train_steps=int(cfg.checkpoint.every_n_steps),
            save_top_k=int(cfg.checkpoint.keep),
            monitor=None,
            save_last=True,
            # Always (atomically) overwrite last.ckpt. With Lightning's version counter, a run resumed
            # from a moved or copied folder (the checkpoint's recorded dirpath differs) wrote last-v1.ckpt
            # beside the old last.ckpt, and the next resume=auto went back to the old one.
            enable_version_counter=False,
        )
    )
    callbacks += list(extra_callbacks or [])
    loggers = build_loggers(OmegaConf.to_container(cfg.logger, resolve=True) if cfg.get("logger") else None, out)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(out))
    return trainer, module, datamodule, ema


def export(cfg: DictConfig, trainer, module, datamodule, ema) -> Path | None:
    """Every rank gathers the (EMA) weights (a collective under FSDP); rank 0 writes the directory."""
    from behavior_lab.training.ema import full_tensor
    from behavior_lab.training.export import export_checkpoint

    if ema is not None:
        state = ema.ema_state_dict(module)
    else:
        state = {k: full_tensor(v) for k, v in module.model.state_dict().items()}
    if not trainer.is_global_zero:
        return None
    return export_checkpoint(
        Path(cfg.export_dir),
        state,
        cfg,
        datamodule.root,
        metadata={"global_step": trainer.global_step, "ema_decay": cfg.ema.get("decay")},
    )


def run(cfg: DictConfig) -> str:
    for node, key in ((cfg.data, "root"), (cfg, "out")):
        if OmegaConf.is_missing(node, key):
            raise SystemExit(f"error: {'data.' if node is not cfg else ''}{key} is required: "
                             "behavior-lab train data.root=DIR out=DIR [experiment=NAME]")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    trainer, module, datamodule, ema = build(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=_resume_path(cfg.get("resume", "auto"), out))
    if trainer.interrupted:
        raise SystemExit(f"training interrupted at step {trainer.global_step}; rerun the same command to resume")
    path = export(cfg, trainer, module, datamodule, ema)
    trainer.strategy.barrier()
    path = Path(cfg.export_dir) if path is None else path
    print(str(path), flush=True)
    return str(path)


def compose(overrides: list[str] | None = None) -> DictConfig:
    """The `train` config as `behavior-lab train` composes it (experiments/ on the search path)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from behavior_lab.cli.main import CONF_DIR, extra_search_paths

    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    sp = ",".join(f"file://{p}" for p in extra_search_paths())
    ovr = list(overrides or []) + ([f"hydra.searchpath=[{sp}]"] if sp else [])
    backup = get_gh_backup()  # callable from inside another Hydra app (e.g. `behavior-lab bench`, sweeps)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name="train", overrides=ovr)
    finally:
        restore_gh_from_backup(backup)


if __name__ == "__main__":  # python -m behavior_lab.cli.train key=value ...
    import sys

    from behavior_lab.cli.main import main

    main(["train", *sys.argv[1:]])
