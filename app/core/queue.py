"""The Celery configuration both sides share, and the API's way to enqueue work by task name.

The API never imports worker/: it only knows the task's name and the queue it listens on.
"""

import logging
from functools import lru_cache
from typing import Any

from celery import Celery

from app.core.config import Settings, get_settings

TRAIN_TASK = "sweepyard.train_runs"
logger = logging.getLogger(__name__)


def celery_config(settings: Settings) -> dict[str, Any]:
    transport_options: dict[str, Any]
    if settings.uses_embedded_broker:
        queue_dir = settings.broker_dir / "queue"
        processed_dir = settings.broker_dir / "processed"
        control_dir = settings.broker_dir / "control"
        for folder in (queue_dir, processed_dir, control_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # Consumers claim a message by renaming its file into processed/; a rename on one filesystem is
        # atomic, so two worker processes never take the same message.
        transport_options = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "store_processed": True,
            "processed_folder": str(processed_dir),
            "control_folder": str(control_dir),
            "polling_interval": 0.05,
        }
    else:
        # Longer than any run, so Redis does not hand an unacknowledged task to a second worker.
        transport_options = {"visibility_timeout": 7 * 24 * 3600}
    return {
        # The embedded transport has no host; naming one keeps kombu from warning about it.
        "broker_url": "filesystem://localhost//" if settings.uses_embedded_broker else settings.broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": settings.queue,
        "task_routes": {TRAIN_TASK: {"queue": settings.queue}},
        "task_publish_retry_policy": {"max_retries": 3, "interval_start": 0.1, "interval_step": 0.5},
        "worker_enable_remote_control": not settings.uses_embedded_broker,
        "worker_send_task_events": False,
    }


def make_celery(settings: Settings, main: str = "sweepyard") -> Celery:
    app = Celery(main)
    app.conf.update(celery_config(settings))
    return app


@lru_cache
def _client() -> Celery:
    return make_celery(get_settings(), main="sweepyard-api")


def enqueue_training(run_ids: list[int]) -> bool:
    """Ask a worker to train these runs together. Call only after the transaction that wrote them commits.

    False when the broker is unreachable: the runs stay queued in the database, which is the truth, and a
    worker sends them again when it starts.
    """
    try:
        _client().send_task(TRAIN_TASK, args=[run_ids], queue=get_settings().queue)
    except Exception:  # the broker's many transport errors all mean "not sent now"
        logger.warning("could not enqueue runs %s; they stay queued in the database", run_ids, exc_info=True)
        return False
    return True


def queued_message_count() -> int | None:
    """Messages waiting in the training queue, or None when the broker cannot be asked."""
    try:
        with _client().connection_for_write() as connection:
            declared = connection.default_channel.queue_declare(
                queue=get_settings().queue, durable=True, auto_delete=False
            )
            return int(declared.message_count)
    except Exception:  # any transport error: unknown
        logger.warning("could not count queued messages", exc_info=True)
        return None


def broker_problem() -> str | None:
    """None when the broker accepts a connection, else what went wrong."""
    try:
        with _client().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # any transport error means "not ready"
        return f"{type(exc).__name__}: {exc}"
    return None
