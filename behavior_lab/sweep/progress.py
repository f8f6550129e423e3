"""The sweep's progress display: one bar per kind of unit, the unit in flight, a line per result.

On a terminal it is a live rich display; elsewhere (CI logs, a SLURM job's output) the same
events are plain lines. `Silent` keeps tests and parallel workers quiet.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

LABELS = {"data": "dataset", "train": "trainings", "eval": "evaluations"}


class Silent:
    def start(self, totals: Mapping[str, int], done: Mapping[str, int]) -> None: ...
    def begin(self, kind: str, label: str) -> None: ...
    def end(self, kind: str, label: str, ok: bool, detail: str = "") -> None: ...
    def skip(self, kind: str, n: int = 1) -> None: ...
    def stop(self) -> None: ...
    def set_done(self, done: Mapping[str, int]) -> None: ...


class SweepProgress(Silent):
    """Bars for datasets/trainings/evaluations; already-finished units count from the start."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, soft_wrap=True)  # log lines stay whole
        self.progress = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[now]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self.tasks: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._last: dict[str, int] = {}

    def start(self, totals, done):
        self.totals, self._last = dict(totals), dict(done)
        self.progress.start()
        for kind, label in LABELS.items():
            if totals.get(kind):
                self.tasks[kind] = self.progress.add_task(
                    label, total=totals[kind], completed=done.get(kind, 0), now=""
                )
        if not self.console.is_terminal:
            parts = [f"{LABELS[k]} {done.get(k, 0)}/{n} done" for k, n in totals.items() if n]
            self.console.print("sweep: " + ", ".join(parts))

    def set_done(self, done):
        for kind, task in self.tasks.items():
            self.progress.update(task, completed=done.get(kind, 0))
        if not self.console.is_terminal and dict(done) != self._last:  # a log line per change
            self._last = dict(done)
            parts = [f"{LABELS[k]} {done.get(k, 0)}/{n}" for k, n in self.totals.items() if n]
            self.console.print("sweep: " + ", ".join(parts) + " done")

    def begin(self, kind, label):
        if kind in self.tasks:
            self.progress.update(self.tasks[kind], now=label)

    def end(self, kind, label, ok, detail=""):
        if kind in self.tasks:
            self.progress.update(self.tasks[kind], advance=1 if ok else 0, now="")
        mark = "[green]done[/green]" if ok else "[red]FAILED[/red]"
        self.console.print(
            f"{LABELS.get(kind, kind)[:-1] if kind != 'data' else 'dataset'} {label}: {mark} {detail}".rstrip()
        )

    def stop(self):
        self.progress.stop()
