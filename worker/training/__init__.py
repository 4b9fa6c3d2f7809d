"""Training: data sets, engines, and the one entry point the task calls."""

import logging
from collections.abc import Sequence

from app.models import RunStatus
from app.schemas import EngineName
from app.services.frames import Frame
from app.services.runs import ClaimedRun, bundle_key
from worker.training.observer import EpochMetrics, RunOutcome, TrainingObserver

logger = logging.getLogger(__name__)


class _Reporting(TrainingObserver):
    """Passes everything on, remembering which runs have had their outcome reported."""

    def __init__(self, observer: TrainingObserver) -> None:
        self.observer = observer
        self.reported: set[int] = set()

    def started(self, run_ids: list[int], device: str) -> None:
        self.observer.started(run_ids, device)

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None:
        self.observer.epoch_done(run_id, metrics)

    def frame_epochs(self, epochs: int) -> list[int]:
        return self.observer.frame_epochs(epochs)

    def frame_done(self, run_id: int, frame: Frame) -> None:
        self.observer.frame_done(run_id, frame)

    def should_stop(self, run_id: int) -> bool:
        return self.observer.should_stop(run_id)

    def finished(self, run_id: int, outcome: RunOutcome) -> None:
        self.reported.add(run_id)
        self.observer.finished(run_id, outcome)

    def checkpoint_due(self) -> bool:
        return self.observer.checkpoint_due()

    def save_checkpoint(self, run_ids: list[int], epoch: int, data: bytes) -> None:
        self.observer.save_checkpoint(run_ids, epoch, data)


def train_bundle(runs: Sequence[ClaimedRun], observer: TrainingObserver) -> None:
    """Train these runs and report each epoch and outcome to the observer.

    Runs that share a bundle key (and checkpoint, when resuming) train together in the vectorized engine,
    from their checkpoint if they have one; runs asking for the reference
    engine train one at a time with the plain PyTorch loop. Whatever goes wrong inside an engine fails
    the runs it had not finished, with the reason, and never leaves them running.
    """
    from worker.training.engine import train_vectorized
    from worker.training.reference import train_run

    groups: dict[tuple[object, ...], list[ClaimedRun]] = {}
    for run in runs:
        groups.setdefault((*bundle_key(run.spec), run.checkpoint_id), []).append(run)
    for group in groups.values():
        reporting = _Reporting(observer)
        try:
            if group[0].spec.engine is EngineName.reference:
                # The reference loop keeps no checkpoint: a resumed run trains again from its first epoch,
                # to the same numbers.
                for run in group:
                    reporting.finished(run.id, train_run(run.id, run.spec, reporting))
            else:
                checkpoint_id = group[0].checkpoint_id
                resume = observer.load_checkpoint(checkpoint_id) if checkpoint_id is not None else None
                train_vectorized(group, reporting, resume)
        except Exception as exc:  # an engine bug or resource error fails its runs, not the worker
            logger.exception("bundle %s failed", [run.id for run in group])
            error = f"{type(exc).__name__}: {exc}"
            for run in group:
                if run.id not in reporting.reported:
                    observer.finished(run.id, RunOutcome(RunStatus.failed, None, error=error))
