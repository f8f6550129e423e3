"""Per-episode results from a sweep ledger: plain dict records, and an Optuna study reader.

The reader is pluggable: anything that yields records of this shape can feed `collect(records=...)`:

    {"cell": "tok+cn", "toggles": {"correlated_noise": True, ...}, "seed": 0,
     "task": "turning_on_radio", "instance": 3, "rollout": 0,
     "metrics": {<per-episode metrics JSON: q_score.final, time.*, ...>},
     # optional: "split": "public"|"heldout", "suite": "embedded"|"omnigibson", "episodes_per_task": 10}

or, for a trial that evaluated several episodes of one task,

    {"cell": ..., "toggles": ..., "seed": ..., "task": ...,
     "metrics": {"episodes": [{"instance": 3, "rollout": 0, <per-episode metrics>}, ...]}}

`read_optuna_records(storage)` turns an Optuna RDB study (the sweep ledger, DESIGN §2) into such
records: each trial's `user_attrs` hold those keys (trials without `metrics` are skipped — e.g.
trainings or failed evaluations; they count as missing episodes, i.e. 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from behavior_lab.eval.scoring import MetricsFormatError, episode_from_dict

LEDGER_KEYS = ("cell", "toggles", "seed", "split", "suite", "episodes_per_task")


def _record_episodes(rec: Mapping, where: str) -> list[tuple[int, int, Mapping]]:
    metrics = rec.get("metrics")
    if not isinstance(metrics, Mapping):
        raise MetricsFormatError(f"{where}: key 'metrics' must be an object (per-episode metrics)")
    if "episodes" in metrics:
        eps = metrics["episodes"]
        if not isinstance(eps, list):
            raise MetricsFormatError(f"{where}: key 'metrics.episodes' must be a list")
        out = []
        for i, ep in enumerate(eps):
            for k in ("instance", "rollout"):
                if not isinstance(ep, Mapping) or k not in ep:
                    raise MetricsFormatError(f"{where}: missing required key 'metrics.episodes[{i}].{k}'")
            out.append((int(ep["instance"]), int(ep["rollout"]), ep))
        return out
    for k in ("instance", "rollout"):
        if k not in rec:
            raise MetricsFormatError(f"{where}: missing required key {k!r} (or give metrics.episodes)")
    return [(int(rec["instance"]), int(rec["rollout"]), metrics)]


def records_to_rows(records: Iterable[Mapping]) -> list[dict]:
    """Tidy rows (collect.episode_row) from ledger records."""
    from behavior_lab.reporting.collect import episode_row

    rows = []
    for i, rec in enumerate(records):
        where = str(rec.get("_source", f"ledger record {i}"))
        if "task" not in rec:
            raise MetricsFormatError(f"{where}: missing required key 'task'")
        meta = {k: rec[k] for k in LEDGER_KEYS if k in rec}
        meta.setdefault("seed", 0)
        meta.setdefault("suite", rec.get("backend"))
        for instance, rollout, m in _record_episodes(rec, where):
            ep = episode_from_dict(m, str(rec["task"]), instance, rollout, f"{where} ({rec['task']}_{instance}_{rollout})")
            rows.append(episode_row(ep, meta, default_cell=str(rec.get("cell", "ledger"))))
    return rows


def read_optuna_records(storage: str, study_name: str | None = None) -> list[dict]:
    """Ledger records from an Optuna RDB study (e.g. `sqlite:///out/ledger.db`).

    study_name: default the only study in the storage (an error lists them when there are several).
    """
    import optuna  # lazy: only reports that read a ledger need it

    if study_name is None:
        names = optuna.study.get_all_study_names(storage=storage)
        if len(names) != 1:
            raise ValueError(f"ledger {storage} holds studies {names}; pass ledger_study=<name>")
        study_name = names[0]
    study = optuna.load_study(study_name=study_name, storage=storage)
    records = []
    for trial in study.get_trials(deepcopy=False):
        attrs = dict(trial.user_attrs)
        if "metrics" not in attrs or "task" not in attrs:
            continue
        attrs["_source"] = f"{storage} study {study_name!r} trial {trial.number}"
        records.append(attrs)
    return records
