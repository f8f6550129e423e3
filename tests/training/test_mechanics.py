"""Training mechanics on a fake model: metrics, clipping, EMA, exact resume after a kill, export."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from safetensors.torch import load_file

from behavior_lab.data.schema import ACTION_DIM_NAMES
from behavior_lab.training.callbacks import ThroughputMonitor
from behavior_lab.training.ema import EMACallback
from behavior_lab.training.export import export_checkpoint
from behavior_lab.training.module import PolicyModule

from training_fakes import FakePolicy, fake_datamodule

OPTIM = {"lr": 3e-3, "end_lr": 3e-4, "warmup_steps": 2, "decay_steps": 12, "grad_clip_norm": 1.0}


class Killed(RuntimeError):
    pass


class KillAtStep(pl.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


def _parts(out: Path, max_steps: int, extra=(), ckpt_every=3, val_every=4, seed=0):
    pl.seed_everything(seed, verbose=False)
    torch.manual_seed(seed)
    module = PolicyModule(FakePolicy(), optim=OPTIM, seed=seed)
    dm = fake_datamodule(seed=seed, augment={"enabled": True})
    ema = EMACallback(0.9)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=max_steps, max_epochs=-1, val_check_interval=val_every,
        check_val_every_n_epoch=None, num_sanity_val_steps=0, log_every_n_steps=1, use_distributed_sampler=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(out),
        logger=pl.loggers.CSVLogger(str(out), name="logs"),
        callbacks=[ThroughputMonitor(), ema, *extra,
                   ModelCheckpoint(dirpath=str(out / "ckpt"), every_n_train_steps=ckpt_every, save_last=True,
                                   save_top_k=-1, monitor=None)],
    )
    return trainer, module, dm, ema


def _weights(module, ema):
    return {k: v.detach().clone() for k, v in module.model.state_dict().items()}, {
        k: v.clone() for k, v in ema.ema.items()
    }


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    t, m, dm, ema = _parts(tmp_path / "a", 12)
    t.fit(m, dm)
    ref_w, ref_ema = _weights(m, ema)

    t, m, dm, ema = _parts(tmp_path / "b", 12, extra=[KillAtStep(7)])
    with pytest.raises(Killed):
        t.fit(m, dm)
    last = tmp_path / "b" / "ckpt" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 6  # weights-only loadable checkpoint
    t, m, dm, ema = _parts(tmp_path / "b", 12, seed=123)  # different init: everything must come from the ckpt
    dm.seed = 0
    m.seed = 0
    t.fit(m, dm, ckpt_path=str(last))
    assert t.global_step == 12
    got_w, got_ema = _weights(m, ema)
    for k in ref_w:  # bit-identical on CPU (tolerance 0)
        assert torch.equal(ref_w[k], got_w[k]), k
    for k in ref_ema:
        assert torch.equal(ref_ema[k], got_ema[k]), k


def test_metrics_clip_ema_and_export(tmp_path):
    t, m, dm, ema = _parts(tmp_path, 8, val_every=4)
    t.fit(m, dm)
    metrics = (Path(t.logger.log_dir) / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in ["train/loss", "train/action_loss", "train/stage_loss", "train/stage_accuracy", "train/grad_norm",
                 "train/param_norm", "train/steps_per_s", "train/samples_per_s", "val/action_loss", "val/loss",
                 "train/grad_norm_body", *(f"train/action_loss_{n}" for n in ACTION_DIM_NAMES),
                 *(f"val/action_loss_{n}" for n in ACTION_DIM_NAMES)]:
        assert name in metrics, name
    assert ema.num_updates == 8
    live = dict(m.model.named_parameters())
    assert any(not torch.equal(ema.ema[n], live[n]) for n in live)  # EMA differs from the live weights

    (tmp_path / "data" / "meta" / "fast_tokenizer").mkdir(parents=True)
    (tmp_path / "data" / "meta" / "norm_stats.json").write_text(json.dumps({"x": 1}))
    (tmp_path / "data" / "meta" / "fast_tokenizer" / "tok.json").write_text("{}")
    path = export_checkpoint(tmp_path / "export", ema.ema_state_dict(m), {"model": {"name": "fake"}},
                             tmp_path / "data", metadata={"global_step": 8})
    assert sorted(p.name for p in path.iterdir()) == ["config.yaml", "fast_tokenizer", "model.safetensors",
                                                      "norm_stats.json"]
    weights = load_file(str(path / "model.safetensors"))
    for n, p in live.items():
        assert torch.equal(weights[n], ema.ema[n])  # exported = EMA, not the live weights
    assert set(weights) == set(m.model.state_dict())


def test_gradient_clipping_caps_global_norm(tmp_path):
    module = PolicyModule(FakePolicy(), optim={**OPTIM, "grad_clip_norm": 1e-3})
    trainer = pl.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, use_distributed_sampler=False,
                         default_root_dir=str(tmp_path))
    seen = {}

    class Probe(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            pass

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen["logged"] = float(trainer.callback_metrics["train/grad_norm"])

    orig = module.on_before_optimizer_step

    def wrapped(opt):
        orig(opt)
        seen["after"] = torch.stack([p.grad.norm() for p in module.model.parameters() if p.grad is not None]).norm()

    module.on_before_optimizer_step = wrapped
    trainer.callbacks.append(Probe())
    trainer.fit(module, fake_datamodule())
    assert seen["logged"] > 1e-3  # the logged norm is the pre-clip norm
    assert float(seen["after"]) == pytest.approx(1e-3, rel=1e-3)


def test_no_stage_metrics_without_stage_head(tmp_path):
    module = PolicyModule(FakePolicy(stage=False), optim=OPTIM)
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=pl.loggers.CSVLogger(str(tmp_path)),
                         log_every_n_steps=1, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, use_distributed_sampler=False, default_root_dir=str(tmp_path))
    trainer.fit(module, fake_datamodule())
    header = (Path(trainer.logger.log_dir) / "metrics.csv").read_text().splitlines()[0]
    assert "train/action_loss" in header and "stage" not in header


def test_datamodule_sampler_state_roundtrip():
    dm = fake_datamodule(seed=3)
    dm.setup("fit")
    state = dm.state_dict()
    assert state["samples_consumed"] == 0 and state["num_train_samples"] == len(dm.train_source)
    state["samples_consumed"] = 48
    other = fake_datamodule(seed=3, batch_size=4)  # a resumed run may change the batch size
    other.setup("fit")
    other.load_state_dict(state)
    assert other.train_dataloader().sampler.start == 48
    with pytest.raises(ValueError, match="data.seed"):
        fake_datamodule(seed=4).load_state_dict(state)
    assert not set(dm.train_episodes) & set(dm.val_episodes) and dm.val_episodes
