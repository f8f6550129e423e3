"""`behavior-lab demos tasks=[...] episodes_per_task=N out=DIR [seed=S] [workers=K]`.

Thin wrapper: the dispatcher composes `conf/demos.yaml`; this calls
`behavior_lab.sim.recorder.record_demos`. Last line printed: the dataset directory.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def _tasks(cfg: DictConfig) -> list[str]:
    tasks = cfg.tasks
    if isinstance(tasks, str):
        return [t.strip() for t in tasks.strip("[]").split(",") if t.strip()]
    return [str(t) for t in OmegaConf.to_container(tasks)]


def _perturbation(cfg: DictConfig):
    from behavior_lab.sim.experts import Perturbation

    p = OmegaConf.select(cfg, "perturb", default=None)
    if p is None:
        return None
    p = OmegaConf.to_container(p)
    unknown = sorted(set(p) - {"arm", "base", "tau"})
    if unknown:
        raise SystemExit(f"error: perturb.{unknown[0]}: unknown key; expected perturb.arm, perturb.base, perturb.tau")
    return Perturbation(**{k: float(v) for k, v in p.items()})


def run(cfg: DictConfig) -> None:
    from behavior_lab.sim.recorder import record_demos

    if OmegaConf.is_missing(cfg, "out"):
        raise SystemExit("error: out is required: behavior-lab demos tasks=[...] episodes_per_task=N out=DIR")
    summary = record_demos(
        _tasks(cfg),
        int(cfg.episodes_per_task),
        str(cfg.out),
        seed=int(cfg.seed),
        workers=int(cfg.workers),
        image_size=int(cfg.sim.image_size),
        codec=str(cfg.codec),
        progress=bool(cfg.progress),
        append=bool(cfg.append),
        perturb=_perturbation(cfg),
    )
    for name, s in summary["tasks"].items():
        print(f"{name}: {s['episodes']} demos from {s['attempts']} expert rollouts "
              f"(success {s['success_rate']:.0%}), mean length {s['mean_length']:.0f} frames, "
              f"{s['seconds_per_attempt']:.1f} s per rollout")
    print(summary["root"])
