"""What the training engines report to, and what they report: epochs in, outcomes out.

Engines know nothing of databases; the worker's recorder implements TrainingObserver.
"""

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.models import RunStatus


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    val_accuracy: float | None


class TrainingObserver(Protocol):
    def started(self, run_ids: list[int], device: str) -> None: ...

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None: ...

    def should_stop(self, run_id: int) -> bool: ...

    def finished(self, run_id: int, outcome: "RunOutcome") -> None: ...


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
