"""`behavior-lab demos` end to end: expert rollouts -> BEHAVIOR-layout LeRobot v2.1 dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from behavior_lab.data import schema


@pytest.mark.sim
def test_demos_cli_writes_a_readable_dataset(tmp_path, capsys):
    from behavior_lab.cli import demos
    from behavior_lab.data.reader import BehaviorDataset

    out = tmp_path / "ds"
    cfg = OmegaConf.create({
        "tasks": ["turning_on_radio"], "episodes_per_task": 2, "out": str(out), "seed": 0, "workers": 1,
        "codec": "libx264", "append": False, "progress": False, "sim": {"image_size": 32, "max_steps": None},
        "perturb": {"arm": 0.03, "base": 0.02, "tau": 10.0},
    })
    demos.run(cfg)
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["fps"] == 30
    ds = BehaviorDataset(out)
    episodes = sorted(ds.episodes)
    assert episodes == [0, 1]
    df = ds.load_parquet(episodes[0])
    actions = np.stack(df[schema.DATASET_ACTION_KEY].to_numpy())
    state = np.stack(df[schema.DATASET_STATE_KEY].to_numpy())
    assert actions.shape[1] == 23 and state.shape[1] == 256 and len(actions) == ds.episode_length(episodes[0])
    video = ds.decode_video(episodes[0], "head", 32)
    assert video.shape == (len(actions), 32, 32, 3)
    ann = json.loads((out / "annotations" / "task-0000" / "episode_00000000.json").read_text())
    assert ann["task_name"] == "turning_on_radio" and ann["skill_annotation"][1]["skill_description"] == "press"
    assert ann["meta_data"]["perturbation"] == {"arm": 0.03, "base": 0.02, "tau": 10.0}


def test_demos_cli_rejects_an_unknown_perturbation_key(tmp_path):
    from behavior_lab.cli import demos

    cfg = OmegaConf.create({"tasks": ["turning_on_radio"], "episodes_per_task": 1, "out": str(tmp_path / "ds"),
                            "seed": 0, "workers": 1, "codec": "libx264", "append": False, "progress": False,
                            "sim": {"image_size": 32, "max_steps": None}, "perturb": {"amr": 0.03}})
    with pytest.raises(SystemExit, match="perturb.amr"):
        demos.run(cfg)
    assert not (tmp_path / "ds").exists()


def test_unknown_task_fails_before_any_rollout(tmp_path):
    from behavior_lab.sim.recorder import record_demos

    with pytest.raises(KeyError, match="Did you mean"):
        record_demos(["picking_up_trsh"], 1, tmp_path / "x", progress=False)
    assert not (tmp_path / "x" / "meta").exists()


@pytest.mark.sim
@pytest.mark.slow
def test_worker_processes_write_the_same_dataset(tmp_path):
    import pandas as pd

    from behavior_lab.sim.recorder import record_demos

    for workers in (1, 2):
        record_demos(["turning_on_radio"], 2, tmp_path / f"w{workers}", seed=3, workers=workers, image_size=32,
                     progress=False)
    for ep in ("episode_00000000", "episode_00000001"):
        a = pd.read_parquet(tmp_path / "w1" / "data" / "task-0000" / f"{ep}.parquet")
        b = pd.read_parquet(tmp_path / "w2" / "data" / "task-0000" / f"{ep}.parquet")
        np.testing.assert_array_equal(np.stack(a["action"].to_numpy()), np.stack(b["action"].to_numpy()))
