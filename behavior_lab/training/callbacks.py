"""Non-essential training callbacks (STYLE habit 6): throughput on the progress bar and in the logs."""

from __future__ import annotations

import time

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import _update_n


class ThroughputMonitor(pl.Callback):
    """Logs ``train/steps_per_s`` and ``train/samples_per_s`` (smoothed, shown on the progress bar).

    Measured between consecutive ``on_train_batch_end`` calls, so data loading, forward, backward and
    the optimizer step all count; the first step after (re)start is skipped (start-up costs).
    """

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self._last: float | None = None
        self._rate: float | None = None
        self.total_time = 0.0
        self.timed_steps = 0
        self.min_step_s = float("inf")  # fastest step: robust to other processes sharing the cores

    def on_train_start(self, trainer, pl_module) -> None:
        self._last = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None:
            dt = max(now - self._last, 1e-9)
            self.total_time += dt
            self.timed_steps += 1
            self.min_step_s = min(self.min_step_s, dt)
            rate = 1.0 / dt
            self._rate = rate if self._rate is None else self.smoothing * self._rate + (1 - self.smoothing) * rate
            bs = int(batch["actions"].shape[0]) * trainer.world_size if "actions" in batch else 0
            pl_module.log("train/steps_per_s", self._rate, on_step=True, prog_bar=True, batch_size=1)
            pl_module.log("train/samples_per_s", self._rate * bs, on_step=True, batch_size=1)
        self._last = now

    def on_validation_end(self, trainer, pl_module) -> None:
        self._last = None  # do not count validation time as a slow training step

    @property
    def mean_steps_per_s(self) -> float:
        return self.timed_steps / self.total_time if self.total_time > 0 else float("nan")


class StepProgressBar(TQDMProgressBar):
    """tqdm bar counted in optimizer steps out of ``max_steps`` (training is one endless epoch),
    showing loss, action loss, steps/s and the last validation action loss."""

    SHOWN = {"train/loss": "loss", "train/action_loss": "action", "train/steps_per_s": "steps/s",
             "val/action_loss": "val_action"}

    def on_train_start(self, trainer, *_) -> None:
        super().on_train_start(trainer, *_)
        # a run resumed mid-epoch (every resume: training is one endless epoch) never calls
        # on_train_epoch_start, so the bar is set up here as well
        self._set_up_bar(trainer)

    def on_train_epoch_start(self, trainer, *_) -> None:
        super().on_train_epoch_start(trainer, *_)
        self._set_up_bar(trainer)

    def _set_up_bar(self, trainer) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None)
        bar.set_description("train")
        # start counting at the resumed step, so it/s is this run's rate (Lightning's bar has smoothing=0:
        # rate = (n - initial) / elapsed)
        bar.initial = trainer.global_step
        _update_n(bar, trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = trainer.global_step
        if self._should_update(n, self.train_progress_bar.total):
            _update_n(self.train_progress_bar, n)
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = trainer.callback_metrics
        return {short: f"{float(metrics[key]):.4g}" for key, short in self.SHOWN.items() if key in metrics}
