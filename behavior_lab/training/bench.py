"""Training benchmarks: throughput of the tiny (embedded) preset on this machine's CPU cores.

`training.tiny`: steps/s and samples/s of `experiment=embedded` (tiny model, all innovations on,
batch 16) for 0 and 1 dataloader workers, one validation pass, and the resulting wall time of the
embedded default training (max_steps from the preset). Builds a synthetic embedded-style dataset in a
temporary directory. The first training step (start-up, frame-cache build) is not timed.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from behavior_lab.benchmarks import register


def _dataset(root: Path) -> Path:
    from behavior_lab.data.fast_samples import fit_fast_tokenizer_from_dataset
    from behavior_lab.data.stats import compute_stats
    from behavior_lab.data.synthetic import make_synthetic_dataset

    make_synthetic_dataset(root, tasks=(0, 1), episodes_per_task=6, length=80, image_size=64, seed=0)
    stats = compute_stats(root, sample_fraction=1.0, progress=False)
    fit_fast_tokenizer_from_dataset(root, stats, sample_fraction=1.0, out_dir=root / "meta" / "fast_tokenizer",
                                    min_frequency=1)
    return root


def _run(root: Path, out: Path, steps: int, workers: int, extra: list[str] = ()) -> dict:
    from behavior_lab.cli import train as train_cli
    from behavior_lab.training.callbacks import ThroughputMonitor

    cfg = train_cli.compose([
        f"data.root={root}", f"out={out}", "experiment=embedded", "logger=none", "resume=null",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        f"trainer.max_steps={steps + 1}", f"trainer.val_check_interval={steps + 1000}",
        f"checkpoint.every_n_steps={steps + 1000}", f"data.num_workers={workers}",
        "data.source_kwargs.progress=false", *extra,
    ])
    trainer, module, dm, ema = train_cli.build(cfg)
    monitor = next(c for c in trainer.callbacks if isinstance(c, ThroughputMonitor))
    trainer.fit(module, datamodule=dm)
    t0 = time.perf_counter()
    trainer.validate(module, datamodule=dm, verbose=False)
    val_s = time.perf_counter() - t0
    rate = monitor.mean_steps_per_s
    return {"steps_per_s": rate, "samples_per_s": rate * int(cfg.data.batch_size), "val_pass_s": val_s,
            "batch_size": int(cfg.data.batch_size), "min_step_s": monitor.min_step_s}


@register("training.tiny")
def bench_tiny(quick: bool = False) -> dict:
    """Tiny-preset training throughput (0 vs 1 workers) and the embedded default's training time."""
    import torch

    from behavior_lab.cli import train as train_cli

    steps = 6 if quick else 30
    figures: dict = {"torch_threads": torch.get_num_threads(), "load_avg_1m_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        root = _dataset(Path(tmp) / "ds")
        best = None
        for workers in (0, 1):
            r = _run(root, Path(tmp) / f"run{workers}", steps, workers)
            figures[f"steps_per_s_workers{workers}"] = round(r["steps_per_s"], 3)
            figures[f"samples_per_s_workers{workers}"] = round(r["samples_per_s"], 2)
            figures[f"min_step_s_workers{workers}"] = round(r["min_step_s"], 3)
            if best is None or r["steps_per_s"] > best["steps_per_s"]:
                best = dict(r, workers=workers)
        preset = train_cli.compose([f"data.root={root}", f"out={tmp}", "experiment=embedded"])
        max_steps, val_every = int(preset.trainer.max_steps), int(preset.trainer.val_check_interval)
    n_val = max_steps // val_every
    est = max_steps / best["steps_per_s"] + n_val * best["val_pass_s"]
    figures.update({
        "best_workers": best["workers"],
        "val_pass_s": round(best["val_pass_s"], 2),
        "embedded_default_steps": max_steps,
        "embedded_default_train_min_est": round(est / 60, 1),
        # the same from the fastest step: what an otherwise idle machine approaches
        "embedded_default_train_min_best_case": round((max_steps * best["min_step_s"] + n_val * best["val_pass_s"]) / 60, 1),
        "load_avg_1m_end": os.getloadavg()[0],
    })
    return figures
