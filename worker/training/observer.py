"""What the training engines report to, and what they report: epochs in, outcomes out.

Engines know nothing of databases; the worker's recorder implements TrainingObserver.
"""

import math
from dataclasses import dataclass, field
from typing import Any

from app.models import RunStatus
from app.services.frames import Frame


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    val_accuracy: float | None


class TrainingObserver:
    """What an engine reports to. The worker's recorder writes to the database; tests keep things in
    memory. Checkpointing is optional: by default nothing is saved or resumed."""

    def started(self, run_ids: list[int], device: str) -> None:
        """The runs are about to train on this device."""

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None:
        raise NotImplementedError

    def frame_epochs(self, epochs: int) -> list[int]:
        """The epochs (0 = before training) after which to report the model's output on its grid."""
        return []

    def frame_done(self, run_id: int, frame: Frame) -> None:
        """The model's output on its grid at an epoch of frame_epochs (kept for plots; optional)."""

    def should_stop(self, run_id: int) -> bool:
        """Asked before each epoch: True makes the run leave its bundle (cancelled or pruned)."""
        return False

    def finished(self, run_id: int, outcome: "RunOutcome") -> None:
        raise NotImplementedError

    def checkpoint_due(self) -> bool:
        return False

    def save_checkpoint(self, run_ids: list[int], epoch: int, data: bytes) -> None:
        """The bundle's state after `epoch`, serialised without pickle."""

    def load_checkpoint(self, checkpoint_id: int) -> bytes | None:
        return None


@dataclass
class RunOutcome:
    status: RunStatus
    summary: dict[str, Any] | None
    error: str | None = None
    predictions: dict[str, Any] | None = None


@dataclass
class SummaryTracker:
    """Follows one run's epochs and builds its summary, whole or partial."""

    num_params: int
    last: EpochMetrics | None = None
    best_epoch: int | None = None
    best_val_loss: float = field(default=math.inf)

    def update(
        self, epoch: int, train_loss: float, val_loss: float, val_accuracy: float | None
    ) -> EpochMetrics:
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch = val_loss, epoch
        self.last = EpochMetrics(epoch, train_loss, val_loss, self.best_val_loss, val_accuracy)
        return self.last

    def state(self) -> list[float]:
        """The tracker as numbers, for a checkpoint (NaN for what is not known yet)."""
        last = self.last
        nan = math.nan
        if last is None:
            return [self.best_val_loss, nan, nan, nan, nan, nan, nan]
        accuracy = nan if last.val_accuracy is None else last.val_accuracy
        best_epoch = nan if self.best_epoch is None else self.best_epoch
        return [
            self.best_val_loss,
            best_epoch,
            last.epoch,
            last.train_loss,
            last.val_loss,
            last.best_val_loss,
            accuracy,
        ]

    def restore(self, state: list[float]) -> None:
        best_val_loss, best_epoch, epoch, train_loss, val_loss, last_best, accuracy = state
        self.best_val_loss = best_val_loss
        self.best_epoch = None if math.isnan(best_epoch) else int(best_epoch)
        if not math.isnan(epoch):
            accuracy_value = None if math.isnan(accuracy) else accuracy
            self.last = EpochMetrics(int(epoch), train_loss, val_loss, last_best, accuracy_value)

    def summary(
        self, duration_s: float, test_loss: float | None = None, test_accuracy: float | None = None
    ) -> dict[str, Any]:
        last = self.last
        return {
            "train_loss": last.train_loss if last else None,
            "val_loss": last.val_loss if last else None,
            "best_val_loss": last.best_val_loss if last else None,
            "best_epoch": self.best_epoch,
            "test_loss": test_loss,
            "val_accuracy": last.val_accuracy if last else None,
            "test_accuracy": test_accuracy,
            "num_params": self.num_params,
            "duration_s": round(duration_s, 4),
        }
