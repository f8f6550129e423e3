"""Ablation sweeps: plan -> train (deduplicated) -> evaluate -> report, resumable through a ledger.

    behavior-lab sweep ablation=NAME tasks=[...] out=DIR [seeds=[...]] [launcher=...]

Parts (one concept per file):
- units.py     deterministic unit ids (SHA-256 of the canonical description)
- design.py    toggles and their stage (train / inference), cells of grid, leave_one_out,
               add_one_in, custom designs
- planner.py   cells x seeds x tasks -> one training per distinct training part, one evaluation
               per (checkpoint, inference part, task)
- ledger.py    the Optuna 5 RDB study that records every unit; crash detection (pid, heartbeat)
- stages.py    the StageRunner seam; CommandStageRunner runs `behavior-lab <cmd>` subprocesses
- driver.py    runs the missing units of a plan, recording each
- launch.py    Hydra multirun mapping (basic, joblib, submitit) and per-job GPUs
- search.py    Optuna TPE over continuous hyperparameters (sweep.mode=search)
- results.py   metrics JSONs <-> ledger records <-> the results tree the report reads
- progress.py  the progress display;  app.py  the command;  bench.py  `sweep.plan` benchmark

Sweep definitions live in ablations/ablation/<NAME>.yaml; shared keys in conf/sweep.yaml.
"""
