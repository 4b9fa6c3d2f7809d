"""Keeps the broker in step with the database, the truth, from every worker.

- Runs `running` whose heartbeat went stale (their worker died) go back to the queue, grouped by the
  checkpoint they resume from; after max_attempts claims a run fails with a clear error instead.
- Queued runs the broker has forgotten (Redis restarted without persistence) are sent again: when the
  queue is empty but the database still has runs waiting, those messages were lost.
- Checkpoints nothing points at any more are deleted.
Repeats are harmless: a run is claimed by one worker only.
"""

import logging
import threading
from pathlib import Path

from app.core import queue
from app.core.config import Settings
from app.core.db import session_scope
from app.schemas import RunSpec
from app.services import runs as run_service

logger = logging.getLogger(__name__)


def process_alive(worker: str) -> bool:
    """Whether the pool process named `node/pid`, of this host, still runs (a zombie does not)."""
    try:
        pid = int(worker.rsplit("/", 1)[1])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ValueError, IndexError, OSError):
        return False
    # The state letter follows the command name in parentheses; Z is a killed process not yet reaped.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Reconciler:
    def __init__(self, settings: Settings, worker_prefix: str) -> None:
        self.settings = settings
        self.worker_prefix = worker_prefix
        self._stopping = threading.Event()

    def start_up(self) -> None:
        try:
            with session_scope() as session:
                orphans = run_service.requeue_orphans(
                    session=session,
                    worker_prefix=self.worker_prefix,
                    is_alive=process_alive,
                    max_attempts=self.settings.max_attempts,
                )
                waiting = run_service.waiting_runs(session=session, older_than_s=0)
        except Exception:
            logger.exception("could not look for runs left behind; the reconciler will try again")
            return
        if orphans.requeued or orphans.failed:
            logger.warning(
                "runs left running by dead processes of this host: requeued %s, failed %s",
                orphans.requeued,
                orphans.failed,
            )
        self._send(waiting)

    def reconcile_once(self) -> None:
        settings = self.settings
        with session_scope() as session:
            result = run_service.requeue_stale(
                session=session, timeout_s=settings.heartbeat_timeout_s, max_attempts=settings.max_attempts
            )
            run_service.delete_unused_checkpoints(session=session)
        for bundle in result.requeued:
            queue.enqueue_training(bundle)
        if result.requeued or result.failed:
            logger.warning("stale runs: requeued %s, failed %s", result.requeued, result.failed)
        if queue.queued_message_count() == 0:
            with session_scope() as session:
                waiting = run_service.waiting_runs(
                    session=session, older_than_s=settings.reconcile_interval_s
                )
            if waiting:
                logger.warning("the broker had lost %s queued runs; sending them again", len(waiting))
                self._send(waiting)

    def _send(self, waiting: list[tuple[int, RunSpec]]) -> None:
        for bundle in run_service.make_bundles(waiting, self.settings.bundle_size):
            queue.enqueue_training(bundle)

    def run_forever(self) -> None:
        while not self._stopping.wait(self.settings.reconcile_interval_s):
            try:
                self.reconcile_once()
            except Exception:  # the database or broker is briefly away: try again next round
                logger.warning("reconciling failed; will retry", exc_info=True)

    def stop(self) -> None:
        self._stopping.set()
