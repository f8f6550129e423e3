"""Every config group option and every experiment preset composes (and the model ones instantiate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from behavior_lab.cli import main as cli

CONF = cli.CONF_DIR
# Which primary config carries each group (the group must be in that config's defaults list).
GROUP_OWNER = {
    "model": "train", "trainer": "train", "data": "train", "optim": "train", "logger": "train",
    "experiment": "train", "sim": "demos", "policy": "eval", "ablation": "sweep",
}
INFERENCE_ONLY = {"inpainting", "spline_speedup", "gripper_corrections"}


def _groups() -> list[tuple[str, str]]:
    """(group path, option) for every YAML under conf/ and the extra search paths."""
    out = []
    for root in [CONF] + cli.extra_search_paths():
        for path in sorted(Path(root).rglob("*.yaml")):
            rel = path.relative_to(root)
            if len(rel.parts) < 2 or rel.parts[0] == "hydra_settings":
                continue
            out.append(("/".join(rel.parts[:-1]), path.stem))
    return out


def _compose(config_name: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    extra = ",".join(f"file://{p}" for p in cli.extra_search_paths())
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name,
                       overrides=[f"hydra.searchpath=[{extra}]", *overrides], return_hydra_config=False)


def _owner(group: str) -> str:
    if group.startswith("innovation/"):
        return "eval" if group.split("/", 1)[1] in INFERENCE_ONLY else "train"
    return GROUP_OWNER[group]


def test_every_group_has_an_owner():
    missing = {g for g, _ in _groups() if not g.startswith("innovation/") and g not in GROUP_OWNER}
    assert not missing, f"config groups without a composing command: {missing}"


@pytest.mark.parametrize("group,option", _groups(), ids=lambda x: str(x))
def test_group_option_composes(group, option):
    owner = _owner(group)
    required = {"train": ["data.root=/nonexistent", "out=/tmp/x"], "eval": ["ckpt=/c", "out=/tmp/x"],
                "demos": ["out=/tmp/x"], "sweep": []}[owner]
    cfg = _compose(owner, [f"{group}={option}", *required])
    assert cfg is not None
    if group == "experiment":
        assert cfg.trainer.max_steps > 0
    if group.startswith("innovation/"):
        name = group.split("/", 1)[1]
        assert cfg.innovation[name].enabled == (option == "on")


@pytest.mark.parametrize("option", ["tiny", "small"])
def test_model_presets_instantiate(option):
    from behavior_lab.models.factory import build_model

    cfg = _compose("train", [f"model={option}", "data.root=/x", "out=/y"])
    model = build_model(cfg.model, cfg.innovation, correlation_cholesky=None)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_pi05_preset_instantiates_on_meta_device():
    import torch

    from behavior_lab.models.factory import build_model

    cfg = _compose("train", ["model=pi05", "data.root=/x", "out=/y"])
    with torch.device("meta"):
        model = build_model(cfg.model, cfg.innovation, correlation_cholesky=None)
    n = sum(p.numel() for p in model.parameters())
    assert 3.0e9 < n < 3.8e9  # Pi0.5 ~3.3B + the seed's new modules


def test_every_primary_config_composes():
    required = {"train": ["data.root=/x", "out=/y"], "eval": ["ckpt=/c", "out=/y"], "serve": ["ckpt=hold"],
                "demos": ["out=/y"], "stats": ["data.root=/x"], "report": ["results=/r", "out=/y"],
                "sweep": [], "bench": []}
    for name in cli.available_commands():
        assert _compose(name, required.get(name, [])) is not None, name
