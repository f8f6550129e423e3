"""`behavior-lab train` end to end on the real data layer and model (tiny preset, CPU)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from safetensors.torch import load_file

from behavior_lab.cli import train as train_cli

EXPERIMENTS = sorted(p.stem for p in (Path(train_cli.__file__).parents[2] / "experiments" / "experiment").glob("*.yaml"))
CPU_EXPERIMENTS = [e for e in EXPERIMENTS if e != "b1k_pi05"]


def _cfg(root, out, *overrides):
    return train_cli.compose([f"data.root={root}", f"out={out}", "data.source_kwargs.progress=false",
                              "trainer.enable_progress_bar=false", *overrides])


def test_presets_found():
    assert {"embedded", "smoke", "b1k_pi05"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", CPU_EXPERIMENTS)
def test_experiment_fast_dev_run_exports(experiment, tiny_dataset, tmp_path, capsys):
    cfg = _cfg(tiny_dataset, tmp_path / "run", f"experiment={experiment}", "trainer.fast_dev_run=true")
    path = train_cli.run(cfg)
    assert capsys.readouterr().out.strip().splitlines()[-1] == path  # the export path is the last line
    files = {p.name for p in Path(path).iterdir()}
    assert {"config.yaml", "model.safetensors", "norm_stats.json", "action_correlation.npz", "fast_tokenizer"} <= files
    from behavior_lab.policy.loading import load_checkpoint

    model, _, cfg2 = load_checkpoint(path)  # what eval/serve do
    assert cfg2.model.name == "tiny"


def test_b1k_pi05_composes_to_the_seed_recipe(tmp_path):
    cfg = _cfg("/data/b1k", tmp_path, "experiment=b1k_pi05")
    assert cfg.model.name == "pi05" and cfg.model.dtype == "float32"  # fp32 masters under bf16 autocast
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.accelerator == "gpu"
    assert cfg.trainer.max_steps == 200_000 and cfg.data.batch_size == 32 and cfg.data.image_size == 224
    assert (cfg.optim.lr, cfg.optim.end_lr, cfg.optim.warmup_steps, cfg.optim.decay_steps) == (1e-4, 1e-5, 1000, 20000)
    assert cfg.ema.decay == 0.99 and cfg.data.augment.enabled
    assert all(cfg.innovation[k].enabled for k in cfg.innovation)


def test_b1k_pi05_model_builds_on_meta_device(tmp_path):
    from behavior_lab.models.factory import build_model

    cfg = _cfg("/data/b1k", tmp_path, "experiment=b1k_pi05")
    model = build_model(cfg.model, cfg.innovation, device="meta")
    n = sum(p.numel() for p in model.parameters())
    assert 3.0e9 < n < 3.8e9, n  # SigLIP-So400m + Gemma-2B + Gemma-300M (+ new heads)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="b1k_pi05 needs a CUDA GPU (pi05-size model, bf16)")
def test_b1k_pi05_fast_dev_run_gpu(tiny_dataset, tmp_path):
    cfg = _cfg(tiny_dataset, tmp_path / "run", "experiment=b1k_pi05", "trainer.fast_dev_run=true",
               "data.batch_size=2", "data.image_size=64", "model.vision.image_size=224")
    assert Path(train_cli.run(cfg)).is_dir()


class Killed(RuntimeError):
    pass


class KillAtStep(pl.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Killed


def test_killed_run_resumes_to_identical_weights(tiny_dataset, tmp_path):
    common = ["experiment=smoke", "trainer.max_steps=6", "trainer.val_check_interval=3", "checkpoint.every_n_steps=3",
              "data.batch_size=4"]
    ref = load_file(str(Path(train_cli.run(_cfg(tiny_dataset, tmp_path / "a", *common))) / "model.safetensors"))

    cfg = _cfg(tiny_dataset, tmp_path / "b", *common)
    trainer, module, dm, ema = train_cli.build(cfg, extra_callbacks=[KillAtStep(5)])
    with pytest.raises(Killed):
        trainer.fit(module, datamodule=dm)
    assert (tmp_path / "b" / "checkpoints" / "last.ckpt").is_file()
    got = load_file(str(Path(train_cli.run(cfg)) / "model.safetensors"))  # resume=auto picks last.ckpt (step 3)
    assert ref.keys() == got.keys()
    worst = max((ref[k].float() - got[k].float()).abs().max().item() for k in ref)
    assert worst == 0.0, f"resumed run differs from the uninterrupted one by up to {worst}"


def _last_steps(run):
    return {p.name: torch.load(str(p), map_location="cpu", weights_only=False)["global_step"]
            for p in sorted((run / "checkpoints").glob("last*.ckpt"))}


def test_a_run_resumed_from_a_copied_folder_keeps_one_last_checkpoint(tiny_dataset, tmp_path):
    """Extending a copy of a run folder: the checkpoint's recorded dirpath differs, which made Lightning's
    version counter write last-v1.ckpt beside the old last.ckpt, and the next resume=auto went back to it"""
    import shutil

    common = ["experiment=smoke", "checkpoint.every_n_steps=3", "data.batch_size=4", "trainer.val_check_interval=3"]
    train_cli.run(_cfg(tiny_dataset, tmp_path / "a", "trainer.max_steps=3", *common))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    train_cli.run(_cfg(tiny_dataset, tmp_path / "b", "trainer.max_steps=6", *common))
    assert _last_steps(tmp_path / "b") == {"last.ckpt": 6}
    train_cli.run(_cfg(tiny_dataset, tmp_path / "b", "trainer.max_steps=9", *common))
    assert _last_steps(tmp_path / "b") == {"last.ckpt": 9}
    assert _last_steps(tmp_path / "a") == {"last.ckpt": 3}  # the original is untouched


def test_resume_auto_takes_the_furthest_trained_last_checkpoint(tiny_dataset, tmp_path, capsys):
    """A folder written by the versioning ModelCheckpoint (a stale last.ckpt and a newer last-v1.ckpt)"""
    import shutil

    common = ["experiment=smoke", "checkpoint.every_n_steps=3", "data.batch_size=4", "trainer.val_check_interval=3"]
    run = tmp_path / "r"
    train_cli.run(_cfg(tiny_dataset, run, "trainer.max_steps=3", *common))
    ckpts = run / "checkpoints"
    shutil.copy(ckpts / "last.ckpt", tmp_path / "step3.ckpt")
    train_cli.run(_cfg(tiny_dataset, run, "trainer.max_steps=5", *common))
    (ckpts / "last.ckpt").rename(ckpts / "last-v1.ckpt")
    shutil.copy(tmp_path / "step3.ckpt", ckpts / "last.ckpt")
    assert _last_steps(run) == {"last-v1.ckpt": 5, "last.ckpt": 3}
    assert train_cli._resume_path("auto", run) == str(ckpts / "last-v1.ckpt")
    assert "last-v1.ckpt at step 5" in capsys.readouterr().out
    assert train_cli._resume_path(None, run) is None
    (ckpts / "last-v2.ckpt").write_bytes(b"half a checkpoint")
    with pytest.raises(RuntimeError, match="last-v2.ckpt"):
        train_cli._resume_path("auto", run)


class _LrPerStep(pl.Callback):
    def __init__(self):
        self.lrs = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]


def test_an_extended_run_follows_its_configured_lr_schedule(tiny_dataset, tmp_path, recwarn):
    """Raising max_steps (experiment=embedded ties optim.decay_steps to it) on a finished run: the resumed
    steps use the new cosine, as the exported config says, and the change is reported. LambdaLR used to
    write the checkpoint's schedule back on load, so the run went on at the old end LR."""
    from behavior_lab.training.schedule import WarmupCosine

    common = ["experiment=smoke", "checkpoint.every_n_steps=3", "data.batch_size=4", "trainer.val_check_interval=3",
              "optim.lr=1e-3", "optim.end_lr=1e-4", "optim.warmup_steps=1"]
    train_cli.run(_cfg(tiny_dataset, tmp_path / "r", "trainer.max_steps=3", "optim.decay_steps=3", *common))
    seen = _LrPerStep()
    cfg = _cfg(tiny_dataset, tmp_path / "r", "trainer.max_steps=6", "optim.decay_steps=6", *common)
    trainer, module, dm, _ = train_cli.build(cfg, extra_callbacks=[seen])
    trainer.fit(module, datamodule=dm, ckpt_path=str(tmp_path / "r" / "checkpoints" / "last.ckpt"))
    want = WarmupCosine(1e-3, 1e-4, 1, 6)
    assert sorted(seen.lrs) == [3, 4, 5]
    for step, lr in seen.lrs.items():
        assert lr == pytest.approx(want.lr(step), rel=1e-6), (step, lr, want.lr(step))
    assert seen.lrs[3] > 3e-4  # not the old run's end LR (1e-4)
    notes = [str(w.message) for w in recwarn if "LR schedule differs" in str(w.message)]
    assert notes and "decay_steps 3 -> 6" in notes[0], notes


class _BarAtEnd(pl.Callback):
    """records the step bar's state when training ends"""

    def on_train_end(self, trainer, pl_module):
        from behavior_lab.training.callbacks import StepProgressBar

        bar = next(c for c in trainer.callbacks if isinstance(c, StepProgressBar)).train_progress_bar
        self.state = (bar.desc.rstrip(": "), bar.total, bar.initial, bar.n)


def test_a_resumed_run_counts_its_bar_from_the_resumed_step(tiny_dataset, tmp_path):
    """resuming is mid-epoch (Lightning skips on_train_epoch_start): the bar still reads `train n/max_steps`
    and measures its rate from the resumed step"""
    common = ["experiment=smoke", "checkpoint.every_n_steps=3", "data.batch_size=4", "trainer.val_check_interval=3",
              "trainer.enable_progress_bar=true"]
    first = _BarAtEnd()
    trainer, module, dm, _ = train_cli.build(_cfg(tiny_dataset, tmp_path / "r", "trainer.max_steps=3", *common),
                                             extra_callbacks=[first])
    trainer.fit(module, datamodule=dm)
    assert first.state == ("train", 3, 0, 3)
    again = _BarAtEnd()
    cfg = _cfg(tiny_dataset, tmp_path / "r", "trainer.max_steps=5", *common)
    trainer, module, dm, _ = train_cli.build(cfg, extra_callbacks=[again])
    trainer.fit(module, datamodule=dm, ckpt_path=str(tmp_path / "r" / "checkpoints" / "last.ckpt"))
    assert again.state == ("train", 5, 3, 5)


def test_init_from_loads_matching_tensors_and_reports(tiny_dataset, tmp_path, capsys):
    """`init_from=` copies a checkpoint's matching tensors before training (spec §12.2)."""
    from safetensors.torch import save_file

    from behavior_lab.models.factory import build_model

    cfg = _cfg(tiny_dataset, tmp_path / "run", "experiment=smoke", "innovation/correlated_noise=off")
    donor = build_model(cfg.model, cfg.innovation)
    with torch.no_grad():
        for p in donor.parameters():
            p.fill_(0.0123)
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(tmp_path / "base.safetensors"))
    cfg = _cfg(tiny_dataset, tmp_path / "run", "experiment=smoke", "innovation/correlated_noise=off",
               f"init_from={tmp_path / 'base.safetensors'}")
    trainer, module, datamodule, _ = train_cli.build(cfg)[:4]
    assert "init_from" in capsys.readouterr().out
    first = next(iter(module.model.parameters()))
    assert torch.all(first == 0.0123)
    with pytest.raises(FileNotFoundError, match="init_from"):
        train_cli.build(_cfg(tiny_dataset, tmp_path / "r2", "experiment=smoke", f"init_from={tmp_path / 'nope'}"))
