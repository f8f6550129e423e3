"""OmniGibson backend: drive the official BEHAVIOR-1K 2025 `eval.py` against our policy server.

The challenge's own harness (OmniGibson 3.7.x on Isaac Sim 4.5, an RTX GPU; facts §4-§5) is the
ground truth for scores, so this backend does not re-implement it: it starts `behavior-lab serve`'s
server in-process on 127.0.0.1, runs `python -m omnigibson.learning.eval policy=websocket ...` once
per task with `log_path=<out>`, and lets the same scorer read the metrics JSONs it writes
(`<out>/metrics/{task}_{instance}_{rollout}.json`). When `omnigibson` is not importable it says how
to install it; nothing here runs on machines without an RTX GPU.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

INSTALL_HINT = (
    "the omnigibson backend needs OmniGibson 3.7.x (Isaac Sim 4.5, Python 3.10, an NVIDIA RTX GPU). "
    "Install it from the BEHAVIOR-1K repository: `git clone https://github.com/StanfordVL/BEHAVIOR-1K && "
    "cd BEHAVIOR-1K && ./setup.sh --new-env --omnigibson --bddl --joylo --dataset --eval` (the PyPI "
    "`omnigibson` 1.1.x predates the challenge and will not work). Alternatively run "
    "`behavior-lab serve ckpt=PATH host=0.0.0.0` here and OmniGibson's eval.py policy=websocket there."
)


class OmniGibsonUnavailable(RuntimeError):
    pass


def omnigibson_available() -> bool:
    return importlib.util.find_spec("omnigibson") is not None


def official_eval_command(task: str, log_path: Path, port: int, instance_ids: list[int] | None,
                          extra: list[str] | None = None) -> list[str]:
    """The documented eval.py invocation (facts §4)."""
    cmd = [sys.executable, "-m", "omnigibson.learning.eval", "policy=websocket", f"log_path={log_path}",
           f"task.name={task}", "headless=true", f"model.port={port}", "model.host=127.0.0.1"]
    if instance_ids:
        cmd.append("eval_instance_ids=[" + ",".join(str(i) for i in instance_ids) + "]")
    return cmd + list(extra or [])


def run_official_eval(cfg: DictConfig, tasks: list[str]) -> Path:
    """Serve the checkpoint on a free loopback port and run eval.py for each task."""
    if not omnigibson_available():
        raise OmniGibsonUnavailable(INSTALL_HINT)
    from omegaconf import OmegaConf

    from behavior_lab.cli.serve import build_policy_factory
    from behavior_lab.serving.server import PolicyServer, ServerConfig

    serve_cfg = OmegaConf.create({"ckpt": cfg.ckpt, "policy": cfg.policy, "innovation": cfg.get("innovation"),
                                  "device": cfg.device})
    factory, metadata = build_policy_factory(serve_cfg)
    server = PolicyServer(factory, ServerConfig(host="127.0.0.1", port=0, metadata=metadata))
    server.start_in_thread(timeout=120)
    out = Path(cfg.out)
    ids = list(range(int(cfg.episodes_per_task)))
    extra = [str(x) for x in (cfg.get("omnigibson_args") or [])]
    try:
        for task in tasks:
            cmd = official_eval_command(task, out, server.port, ids, extra)
            subprocess.run(cmd, check=True)
    finally:
        server.stop()
    return out / "metrics"
