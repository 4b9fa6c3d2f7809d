"""The worker's Celery app: configuration (shared with the API in app/core/queue.py) and the worker's
start-up and reconciler hooks."""

import logging
import threading
from typing import Any

import torch
from celery.signals import worker_process_init, worker_ready, worker_shutting_down

from app.core import db
from app.core.config import get_settings
from app.core.queue import make_celery
from worker.reconciler import Reconciler

logger = logging.getLogger(__name__)

celery_app = make_celery(get_settings())
celery_app.conf.include = ["worker.tasks"]
_reconciler: Reconciler | None = None


def worker_prefix(nodename: str | None) -> str:
    """What every process of this worker node writes before its pid in `runs.worker`."""
    return f"{nodename or 'sweepyard@unknown'}/"


def worker_identity(nodename: str | None, pid: int) -> str:
    """Which process trains a run: the Celery node name and the pool process's pid."""
    return f"{worker_prefix(nodename)}{pid}"


@worker_process_init.connect
def _init_child(**_: Any) -> None:
    # Tiny models: one thread per process beats threads fighting over two cores.
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    # Connections must not cross a fork.
    db.forget_engines(close=False)


@worker_ready.connect
def _start_reconciling(sender: Any, **_: Any) -> None:
    """The database is the truth: on start, runs that earlier processes of this worker left running go
    back to the queue, and from then on a reconciler thread keeps the broker in step with the database."""
    global _reconciler
    _reconciler = Reconciler(get_settings(), worker_prefix=worker_prefix(sender.hostname))
    _reconciler.start_up()
    threading.Thread(target=_reconciler.run_forever, name="reconciler", daemon=True).start()


@worker_shutting_down.connect
def _stop_reconciling(**_: Any) -> None:
    if _reconciler is not None:
        _reconciler.stop()
