"""`behavior-lab report results=DIR out=DIR`: thin wrapper — compose (done by the dispatcher), call."""

from __future__ import annotations

import shlex
import sys

from omegaconf import DictConfig, OmegaConf


def _command_line() -> str:
    """The user's command for report.md: the dispatcher sets argv[0] to "behavior-lab report" and
    appends its own hydra.* overrides, which are left out."""
    if not sys.argv or not sys.argv[0].startswith("behavior-lab"):
        return ""
    args = [a for a in sys.argv[1:] if not a.startswith("hydra.")]
    return " ".join([sys.argv[0], *(shlex.quote(a) for a in args)])


def run(cfg: DictConfig) -> None:
    from behavior_lab.reporting.report import build_report, settings_from_mapping

    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    plain.pop("hydra", None)
    settings = settings_from_mapping(plain)
    command = _command_line()
    output = build_report(settings, config_yaml=OmegaConf.to_yaml(OmegaConf.create(plain)), command=command,
                          progress=lambda msg: print(f"[report] {msg}", file=sys.stderr, flush=True))
    o = output.overall
    print(f"q-score {o['q_score']:.4f} [{o['q_score_ci'][0]:.4f}, {o['q_score_ci'][1]:.4f}]  "
          f"task SR {o['task_sr']:.4f}  ({o['num_tasks']} tasks, cell {o['cell']!r})")
    print(f"report written to {output.out / 'report.md'}")
