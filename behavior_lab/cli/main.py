"""`behavior-lab <command> [hydra overrides]`: the one entry point (DESIGN §6).

Each command is a module `behavior_lab.cli.<command>` exposing `run(cfg)` and a primary config
`behavior_lab/conf/<command>.yaml`. Only commands whose module and config both exist are listed:
nothing is advertised before it works. The top-level `experiments/` and `ablations/` folders are
added to Hydra's search path from any working directory.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# Order and one-line help of every command the project knows (DESIGN §6).
KNOWN_COMMANDS = {
    "demos": "scripted demonstrations -> dataset (embedded suite)",
    "stats": "normalisation stats + action correlation (+ FAST tokenizer)",
    "train": "one training run; prints the exported checkpoint path last",
    "eval": "roll out a checkpoint, write per-episode metrics JSONs",
    "serve": "websocket policy server for OmniGibson's eval.py",
    "sweep": "the ablation grid: plan -> train (deduped) -> eval -> report",
    "report": "plots + tables from result folders",
    "bench": "the benchmarks: figures as a table and as JSON",
}


def available_commands() -> dict[str, str]:
    out = {}
    for name, help_ in KNOWN_COMMANDS.items():
        if (CONF_DIR / f"{name}.yaml").is_file() and importlib.util.find_spec(f"behavior_lab.cli.{name}"):
            out[name] = help_
    return out


def extra_search_paths() -> list[Path]:
    """Top-level experiment presets and sweep definitions (DESIGN §3), plus $BEHAVIOR_LAB_CONF_PATH."""
    paths = [REPO_ROOT / "experiments", REPO_ROOT / "ablations"]
    env = os.environ.get("BEHAVIOR_LAB_CONF_PATH")
    if env:
        paths = [Path(p) for p in env.split(os.pathsep) if p] + paths
    return [p for p in paths if p.is_dir()]


def _usage(cmds: dict[str, str]) -> str:
    width = max((len(c) for c in cmds), default=5)
    lines = ["usage: behavior-lab <command> [key=value ...] [--help] [--cfg job] [--info searchpath]", "", "commands:"]
    lines += [f"  {c:<{width}}  {h}" for c, h in cmds.items()]
    lines += ["", "Each command takes Hydra overrides, e.g.", "  behavior-lab train data.root=DIR out=DIR innovation/system2=off"]
    return "\n".join(lines)


def _config_group_options(group: str) -> list[str] | None:
    """Options of a config group over the package conf and the extra search paths; None = no such group."""
    roots = [CONF_DIR] + extra_search_paths()
    found: set[str] = set()
    exists = False
    for r in roots:
        d = r / group
        if d.is_dir():
            exists = True
            found.update(p.stem for p in d.glob("*.yaml"))
    return sorted(found) if exists else None


def check_overrides(overrides: list[str]) -> str | None:
    """Pre-check `group=option` overrides so a typo lists valid options and suggests the nearest."""
    for ov in overrides:
        if ov.startswith("-") or "=" not in ov:
            continue
        key, value = ov.split("=", 1)
        key = key.lstrip("+~")
        if "." in key or key.startswith("hydra") or value in ("null", "") or "," in value:
            continue
        opts = _config_group_options(key)
        if opts is None or value in opts:
            continue
        near = difflib.get_close_matches(value, opts, n=3)
        hint = f" Did you mean {' or '.join(near)}?" if near else ""
        return f"error: unknown {key} {value!r}.{hint} Valid options for {key}: {', '.join(opts)}"
    return None


# Hydra flags that take a value (`--info` takes an optional one).
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                "--config-dir", "-cd", "--experimental-rerun", "--info", "-i"}


def split_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """(flags with their values, overrides), each in the user's order."""
    flags, overrides = [], []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-"):
            flags.append(a)
            if a in _VALUE_FLAGS and "=" not in a and i + 1 < len(args) and "=" not in args[i + 1] \
                    and not args[i + 1].startswith("-"):
                flags.append(args[i + 1])
                i += 1
        else:
            overrides.append(a)
        i += 1
    return flags, overrides


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmds = available_commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(cmds))
        return
    cmd, rest = argv[0], argv[1:]
    if cmd not in cmds:
        near = difflib.get_close_matches(cmd, list(cmds), n=1)
        hint = f" Did you mean '{near[0]}'?" if near else ""
        print(f"error: unknown command {cmd!r}.{hint}\n\n{_usage(cmds)}", file=sys.stderr)
        raise SystemExit(2)
    problem = check_overrides(rest)
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(2)

    import hydra
    from omegaconf import DictConfig

    module = importlib.import_module(f"behavior_lab.cli.{cmd}")
    searchpath = ",".join(f"file://{p}" for p in extra_search_paths())
    # Hydra's argparse wants flags before overrides (positionals split by a flag are refused), so
    # `behavior-lab sweep a=1 --cfg job` and `sweep --multirun a=1` both become flags + overrides.
    flags, overrides = split_flags(rest)
    ours = [f"hydra.searchpath=[{searchpath}]"] if searchpath else []
    hydra_args = flags + ours + [f"hydra.job.name={cmd}"] + overrides

    def task(cfg: DictConfig):
        return module.run(cfg)

    task.__module__ = module.__name__
    sys.argv = [f"behavior-lab {cmd}"] + hydra_args
    # config_path is relative to this file; version_base 1.3: no chdir into the run dir.
    hydra.main(config_path="../conf", config_name=cmd, version_base="1.3")(task)()


if __name__ == "__main__":
    main()
