"""`behavior-lab sweep ablation=NAME tasks=[...] out=DIR [seeds=[...]] [launcher=...]`

Thin wrapper: the dispatcher composes `conf/sweep.yaml` + `ablations/ablation/<NAME>.yaml`; this
reads what only the CLI knows (the ablation's name, the command-line overrides for a multirun,
the job number inside one) and calls behavior_lab.sweep.app. The last line printed says where the
report is.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def _hydra_context() -> tuple[str, list[str], int]:
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
    except ValueError:  # called outside a Hydra app (tests compose the config themselves)
        return "custom", [], 0
    num = hc.job.get("num")
    return str(hc.runtime.choices.get("ablation") or "custom"), list(hc.overrides.task), int(num or 0)


def run(cfg: DictConfig) -> dict:
    from behavior_lab.sweep.app import SweepApp

    ablation, overrides, job = _hydra_context()
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    app = SweepApp(plain, ablation, overrides, job_num=job)
    summary = app.run()
    if (plain.get("worker") or {}).get("train") is not None:
        print(f"sweep worker {job}: ran {summary.ran}, {len(summary.failed)} failed")
        return summary.as_dict()
    for f in summary.failed:
        print(f"FAILED {f}")
    if summary.best:
        best = summary.best
        print(f"best search trial {best['trial']}: mean q-score {best['value']:.4f} {best['params']}")
    state = (
        "complete"
        if not summary.failed and not summary.pending
        else f"{summary.pending} units still missing (rerun the same command)"
    )
    where = summary.report or summary.results
    print(f"sweep {ablation} {state}; ledger {app.ledger.url}; report: {where}")
    if summary.failed or summary.pending:
        raise SystemExit(1)
    return summary.as_dict()
