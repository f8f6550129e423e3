"""The `behavior-lab` entry point: dispatch, help, helpful errors, search path from any cwd."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from behavior_lab.cli import main as cli

REPO = Path(__file__).resolve().parent.parent
EXE = [sys.executable, "-m", "behavior_lab.cli.main"]


def _run(args, cwd):
    return subprocess.run(EXE + args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_no_args_lists_available_commands(capsys):
    cli.main([])
    out = capsys.readouterr().out
    assert "usage: behavior-lab" in out
    for name in cli.available_commands():
        assert name in out


def test_only_implemented_commands_are_listed():
    for name in cli.available_commands():
        assert (cli.CONF_DIR / f"{name}.yaml").is_file()
        __import__(f"behavior_lab.cli.{name}")
        assert callable(sys.modules[f"behavior_lab.cli.{name}"].run)
    assert "bench" in cli.available_commands()


def test_unknown_command_suggests_nearest(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bnch"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown command 'bnch'" in err and "Did you mean 'bench'" in err


def test_unknown_config_option_lists_valid_ones(tmp_path):
    group = tmp_path / "widget"
    group.mkdir()
    (group / "sprocket.yaml").write_text("a: 1\n")
    (group / "gear.yaml").write_text("a: 2\n")
    import os

    old = os.environ.get("BEHAVIOR_LAB_CONF_PATH")
    os.environ["BEHAVIOR_LAB_CONF_PATH"] = str(tmp_path)
    try:
        msg = cli.check_overrides(["widget=sprockt"])
    finally:
        if old is None:
            os.environ.pop("BEHAVIOR_LAB_CONF_PATH")
        else:
            os.environ["BEHAVIOR_LAB_CONF_PATH"] = old
    assert msg is not None
    assert "Did you mean sprocket" in msg and "gear" in msg
    assert cli.check_overrides(["quick=true", "a.b=3", "hydra.run.dir=x"]) is None


def test_searchpath_from_any_working_directory(tmp_path):
    r = _run(["bench", "--info", "searchpath"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "pkg://behavior_lab.conf" in r.stdout
    assert f"file://{REPO / 'experiments'}" in r.stdout
    assert f"file://{REPO / 'ablations'}" in r.stdout


def test_command_help_shows_config(tmp_path):
    r = _run(["bench", "--help"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "behavior-lab bench" in r.stdout and "quick" in r.stdout


def test_bench_unknown_name_lists_available(tmp_path):
    r = _run(["bench", "names=[no_such_bench]", f"out={tmp_path}"], cwd=tmp_path)
    assert r.returncode != 0
    assert "unknown benchmark 'no_such_bench'" in (r.stdout + r.stderr)


def test_flags_are_moved_before_overrides():
    assert cli.split_flags(["a=1", "--cfg", "job", "b=2"]) == (["--cfg", "job"], ["a=1", "b=2"])
    assert cli.split_flags(["--multirun", "a=1,2"]) == (["--multirun"], ["a=1,2"])
    assert cli.split_flags(["--info", "a=1"]) == (["--info"], ["a=1"])
    assert cli.split_flags(["--info", "searchpath"]) == (["--info", "searchpath"], [])


def test_cfg_job_after_overrides(tmp_path):
    r = _run(["bench", "quick=true", "--cfg", "job"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "quick: true" in r.stdout
