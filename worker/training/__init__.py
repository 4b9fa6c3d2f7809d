"""Training: data sets, engines, and the one entry point the task calls."""

from collections.abc import Sequence

from app.schemas import EngineName
from app.services.runs import ClaimedRun, bundle_key
from worker.training.observer import TrainingObserver


def train_bundle(runs: Sequence[ClaimedRun], observer: TrainingObserver) -> None:
    """Train these runs and report each epoch and outcome to the observer.

    Runs that share a bundle key train together in the vectorized engine; runs asking for the reference
    engine train one at a time with the plain PyTorch loop.
    """
    from worker.training.engine import train_vectorized
    from worker.training.reference import train_run

    groups: dict[tuple[object, ...], list[ClaimedRun]] = {}
    for run in runs:
        groups.setdefault(bundle_key(run.spec), []).append(run)
    for group in groups.values():
        if group[0].spec.engine is EngineName.reference:
            for run in group:
                observer.finished(run.id, train_run(run.id, run.spec, observer))
        else:
            train_vectorized(group, observer)
