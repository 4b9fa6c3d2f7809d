"""The worker's Celery app: configuration only (shared with the API in app/core/queue.py)."""

import logging
from typing import Any

import torch
from celery.signals import worker_process_init, worker_ready

from app.core import db
from app.core.config import get_settings
from app.core.queue import TRAIN_TASK, make_celery
from app.services import runs as run_service

logger = logging.getLogger(__name__)

celery_app = make_celery(get_settings())
celery_app.conf.include = ["worker.tasks"]


@worker_process_init.connect
def _init_child(**_: Any) -> None:
    # Tiny models: one thread per process beats threads fighting over two cores.
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    # Connections must not cross a fork.
    db.forget_engines(close=False)


@worker_ready.connect
def _requeue_on_start(sender: Any, **_: Any) -> None:
    """The database is the truth: runs an earlier life of this worker left running start again, and every
    queued run is sent again in case the broker lost it (a run is claimed once, so repeats are harmless)."""
    with db.session_scope() as session:
        orphans = run_service.requeue_orphans(session=session, worker=sender.hostname)
        queued = run_service.queued_run_ids(session=session)
    if orphans:
        logger.warning("requeued runs %s left running by an earlier %s", orphans, sender.hostname)
    for run_id in queued:
        celery_app.send_task(TRAIN_TASK, args=[[run_id]], queue=get_settings().queue)
