"""Training: data sets, engines, and the one entry point the task calls."""

from collections.abc import Sequence

from app.services.runs import ClaimedRun
from worker.training.observer import TrainingObserver


def train_bundle(runs: Sequence[ClaimedRun], observer: TrainingObserver) -> None:
    """Train these runs and report each epoch and outcome to the observer.

    Today every run trains alone with the reference loop; a batched engine plugs in here, and the task
    and the API stay as they are.
    """
    from worker.training.reference import train_run

    for run in runs:
        observer.finished(run.id, train_run(run.id, run.spec, observer))
