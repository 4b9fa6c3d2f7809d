"""The worker's TrainingObserver: the database side of training.

It buffers epoch metrics and writes them in bulk about once a second, heartbeats while the runs train,
saves the bundle's checkpoint every few seconds of training, and stops a run that was cancelled, pruned
or taken over by another worker. It is also where a sweep's rules meet training: at a bracket epoch it
asks whether the run lags its sweep (early_terminate), and when a run of a bayes sweep ends it lets the
sweep plan its next runs.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_delay, wait_exponential

from app.core import queue
from app.core.config import Settings
from app.core.db import DatabaseUnavailable, session_scope
from app.services import frames, pruning, sweeps
from app.services import runs as run_service
from app.services.datasets import Task
from app.services.errors import Unprocessable
from app.services.runs import ClaimedRun
from worker.training.observer import EpochMetrics, RunOutcome, TrainingObserver

logger = logging.getLogger(__name__)
T = TypeVar("T")


def with_retries(settings: Settings, work: Callable[[], T]) -> T:
    """Run `work` (its own transaction) again with backoff while the database is unreachable. Buffered
    metrics stay in memory meanwhile, so a blip loses nothing; training waits at the next write."""
    retrying = Retrying(
        retry=retry_if_exception_type(DatabaseUnavailable),
        wait=wait_exponential(multiplier=0.1, max=5),
        stop=stop_after_delay(settings.db_retry_s),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )
    return retrying(work)


class DatabaseRecorder(TrainingObserver):
    def __init__(self, settings: Settings, runs: list[ClaimedRun], worker: str) -> None:
        self.settings = settings
        self.worker = worker
        self.sweep_of = {run.id: run.sweep_id for run in runs if run.sweep_id is not None}
        self.active = {run.id for run in runs}
        self.buffer: list[dict[str, Any]] = []
        self.frame_buffer: list[dict[str, Any]] = []
        self.classifies = {run.id: run.spec.task is Task.classification for run in runs}
        self.stopped: set[int] = set()
        # Runs that reached a bracket epoch; judged once every member of the bundle has reported it.
        self.at_bracket: list[tuple[int, int]] = []
        self.checkpoint_ids = {run.checkpoint_id for run in runs if run.checkpoint_id is not None}
        self.last_flush = self.last_check = self.last_checkpoint = time.monotonic()

        def load_sweep_rules() -> tuple[set[int], dict[int, set[int]]]:
            with session_scope() as session:
                growing = sweeps.bayes_sweep_ids(session=session, sweep_ids=set(self.sweep_of.values()))
                brackets = {
                    run.id: set(
                        pruning.pruning_brackets(
                            session=session, sweep_id=run.sweep_id, epochs=run.spec.epochs
                        )
                    )
                    for run in runs
                    if run.sweep_id is not None
                }
            return growing, brackets

        self.growing, self.brackets = self._retry(load_sweep_rules)
        self._closing = threading.Event()
        self._heart = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._heart.start()

    def _retry(self, work: Callable[[], T]) -> T:
        return with_retries(self.settings, work)

    def _beat(self) -> None:
        """Heartbeat from a thread of its own, so a long epoch never looks like a dead worker."""
        while not self._closing.wait(self.settings.heartbeat_interval_s):
            try:
                with session_scope() as session:
                    run_service.heartbeat(session=session, run_ids=set(self.active), worker=self.worker)
            except Exception:  # a missed beat is retried at the next one
                logger.warning("heartbeat failed", exc_info=True)

    def close(self) -> None:
        """Stop heartbeating, and drop the bundle's checkpoints once all its runs have ended."""
        self._closing.set()
        self._heart.join(timeout=5)
        if not self.active and self.checkpoint_ids:

            def drop() -> None:
                with session_scope() as session:
                    for checkpoint_id in self.checkpoint_ids:
                        run_service.delete_checkpoint(session=session, checkpoint_id=checkpoint_id)

            self._retry(drop)

    def started(self, run_ids: list[int], device: str) -> None:
        def record() -> None:
            with session_scope() as session:
                run_service.set_device(session=session, run_ids=run_ids, device=device)

        self._retry(record)

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None:
        self.buffer.append({"run_id": run_id, **metrics.__dict__})
        if metrics.epoch in self.brackets.get(run_id, ()):
            self.at_bracket.append((run_id, metrics.epoch))
        elif time.monotonic() - self.last_flush >= self.settings.metrics_flush_interval_s:
            self.flush()

    def frame_epochs(self, epochs: int) -> list[int]:
        return frames.frame_epochs(epochs, self.settings.boundary_frames)

    def frame_done(self, run_id: int, frame: frames.Frame) -> None:
        data = frames.encode(frame, classification=self.classifies[run_id])
        self.frame_buffer.append(
            {"run_id": run_id, "epoch": frame.epoch, "bounds": frame.bounds, "data": data}
        )

    def _judge_brackets(self) -> None:
        """Compare the runs at a bracket with their sweep. The engine asks should_stop only after every
        member has reported the epoch, so members of one bundle are judged against each other too."""
        self.flush()  # the comparison reads every run's value at this epoch from the database

        def judge() -> set[int]:
            pruned = set()
            with session_scope() as session:
                for run_id, epoch in self.at_bracket:
                    sweep_id = self.sweep_of[run_id]
                    if pruning.should_prune(session=session, sweep_id=sweep_id, run_id=run_id, epoch=epoch):
                        pruning.mark_pruned(session=session, run_id=run_id)
                        pruned.add(run_id)
            return pruned

        pruned = self._retry(judge)
        for run_id in pruned:
            logger.info("run %s pruned", run_id)
        self.stopped |= pruned
        self.at_bracket = []

    def should_stop(self, run_id: int) -> bool:
        if self.at_bracket:
            self._judge_brackets()
        # One cheap query for the whole bundle, at most every check interval: a cancelled run stops within
        # an epoch, or within that interval when epochs are shorter.
        now = time.monotonic()
        if now - self.last_check >= self.settings.cancel_check_interval_s:

            def look() -> set[int]:
                with session_scope() as session:
                    return run_service.stopped_run_ids(
                        session=session, run_ids=self.active, worker=self.worker
                    )

            self.stopped |= self._retry(look)
            self.last_check = now
        return run_id in self.stopped

    def flush(self) -> None:
        if self.buffer or self.frame_buffer:

            def write() -> None:
                with session_scope() as session:
                    run_service.record_epochs(session=session, rows=self.buffer)
                    frames.record_frames(session=session, rows=self.frame_buffer)

            self._retry(write)
            self.buffer, self.frame_buffer = [], []
        self.last_flush = time.monotonic()

    def checkpoint_due(self) -> bool:
        return time.monotonic() - self.last_checkpoint >= self.settings.checkpoint_interval_s

    def save_checkpoint(self, run_ids: list[int], epoch: int, data: bytes) -> None:
        # Metrics first: the database then always holds every epoch up to the checkpoint's.
        self.flush()

        def save() -> int:
            with session_scope() as session:
                return run_service.save_checkpoint(
                    session=session,
                    checkpoint_id=next(iter(self.checkpoint_ids), None),
                    run_ids=run_ids,
                    epoch=epoch,
                    data=data,
                )

        self.checkpoint_ids.add(self._retry(save))
        self.last_checkpoint = time.monotonic()

    def load_checkpoint(self, checkpoint_id: int) -> bytes | None:
        def load() -> bytes | None:
            with session_scope() as session:
                return run_service.load_checkpoint(session=session, checkpoint_id=checkpoint_id)

        return self._retry(load)

    def finished(self, run_id: int, outcome: RunOutcome) -> None:
        self.flush()

        def write() -> None:
            with session_scope() as session:
                run_service.finish_run(
                    session=session,
                    run_id=run_id,
                    worker=self.worker,
                    status=outcome.status,
                    summary=outcome.summary,
                    error=outcome.error,
                    predictions=outcome.predictions,
                )

        self._retry(write)
        self.active.discard(run_id)
        logger.info(
            "run %s %s%s", run_id, outcome.status.value, f": {outcome.error}" if outcome.error else ""
        )
        if self.sweep_of.get(run_id) in self.growing:
            self._advance(self.sweep_of[run_id])

    def _advance(self, sweep_id: int) -> None:
        def plan() -> list[list[int]]:
            with session_scope() as session:
                return sweeps.advance_sweep(session=session, sweep_id=sweep_id)

        try:
            bundles = self._retry(plan)
        except Unprocessable as exc:
            # A suggestion the run spec refuses (say, over the compute budget) must not stop this worker.
            logger.error("sweep %s could not plan its next runs: %s", sweep_id, exc)
            return
        for bundle in bundles:
            queue.enqueue_training(bundle)
