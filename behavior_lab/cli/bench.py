"""`behavior-lab bench [names=[...]] [quick=true] [out=DIR]`: run registered benchmarks."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def run(cfg: DictConfig) -> dict:
    from behavior_lab import benchmarks

    names = OmegaConf.to_container(cfg.names) if cfg.names else []
    if isinstance(names, str):
        names = [names]
    report = benchmarks.run([str(n) for n in names], quick=bool(cfg.quick), out=cfg.out)
    print(f"benchmark figures written to {report['path']}")
    return report
