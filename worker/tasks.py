"""Celery tasks: thin. Load ids, claim, call the engine, let the recorder write results."""

import logging
import os
from typing import Any

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.queue import TRAIN_TASK
from app.services import runs as run_service
from worker.celery_app import celery_app, worker_identity
from worker.recorder import DatabaseRecorder, with_retries
from worker.training import train_bundle

logger = logging.getLogger(__name__)
MAX_BUNDLE = 10_000


def parse_run_ids(payload: Any) -> list[int]:
    """A message is outside input: accept only a list of positive integer ids."""
    if not isinstance(payload, list) or len(payload) > MAX_BUNDLE:
        raise ValueError(f"expected a list of at most {MAX_BUNDLE} run ids, got {type(payload).__name__}")
    if not all(type(item) is int and item > 0 for item in payload):
        raise ValueError("run ids must be positive integers")
    return list(dict.fromkeys(payload))


@celery_app.task(name=TRAIN_TASK, bind=True)
def train_runs(self: Any, run_ids: Any) -> None:
    try:
        ids = parse_run_ids(run_ids)
    except ValueError as exc:
        logger.error("dropped a malformed training message: %s", exc)
        return
    worker = worker_identity(self.request.hostname, os.getpid())
    settings = get_settings()

    def claim() -> list[run_service.ClaimedRun]:
        with session_scope() as session:
            return run_service.claim_runs(session=session, run_ids=ids, worker=worker)

    claimed = with_retries(settings, claim)
    if not claimed:
        return
    recorder = DatabaseRecorder(settings, claimed, worker)
    try:
        train_bundle(claimed, recorder)
    finally:
        recorder.close()
