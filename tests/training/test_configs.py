"""Every training config group option composes; loggers fail helpfully when their package is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hydra.utils import instantiate

from behavior_lab.cli.train import compose
from behavior_lab.training.loggers import build_loggers

CONF = Path(__file__).resolve().parents[2] / "behavior_lab" / "conf"


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["trainer", "data", "optim", "logger"])
def test_every_option_composes(group, tmp_path):
    for option in _options(group):
        cfg = compose([f"{group}={option}", "data.root=/x", f"out={tmp_path}"])
        assert cfg.out == str(tmp_path)


def test_cpu_trainer_instantiates_with_fp32_and_own_clipping(tmp_path):
    cfg = compose(["data.root=/x", f"out={tmp_path}"])
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.precision == "32-true" and trainer.gradient_clip_val is None
    assert cfg.optim.grad_clip_norm == 1.0 and tuple(cfg.optim.betas) == (0.9, 0.95)


def test_gpu_configs_pick_bf16_and_strategies(tmp_path):
    gpu = compose(["trainer=gpu", "data.root=/x", f"out={tmp_path}"]).trainer
    ddp = compose(["trainer=ddp", "data.root=/x", f"out={tmp_path}"]).trainer
    fsdp = compose(["trainer=fsdp", "data.root=/x", f"out={tmp_path}"]).trainer
    assert gpu.precision == ddp.precision == fsdp.precision == "bf16-mixed"
    assert ddp.strategy._target_.endswith("DDPStrategy")
    assert fsdp.strategy._target_.endswith("ModelParallelStrategy") and not fsdp.strategy.save_distributed_checkpoint


@pytest.mark.parametrize("kind,module", [("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_optional_logger_missing_package_error(kind, module, tmp_path):
    if importlib.util.find_spec(module) or (kind == "tensorboard" and importlib.util.find_spec("tensorboardX")):
        pytest.skip(f"{module} is installed")
    with pytest.raises(ImportError, match=r"behavior_lab\[tracking\]"):
        build_loggers({kind: {"kind": kind}}, tmp_path)


def test_csv_logger_and_unknown_kind(tmp_path):
    (csv,) = build_loggers({"csv": {"kind": "csv", "name": "logs"}}, tmp_path)
    assert Path(csv.save_dir) == tmp_path
    with pytest.raises(KeyError, match="valid kinds"):
        build_loggers({"x": {"kind": "mlflow"}}, tmp_path)
