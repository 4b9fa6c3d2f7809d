"""The hot read paths of runs: Core queries shaped straight into JSON bytes.

Status, list and history are what dashboards poll. Loading ORM objects and validating stored data
again through Pydantic cost several times the queries themselves, so these views select the columns
they need and build the same JSON that RunPublic and MetricsPublic document. What they read was
validated when it was written.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.models import EpochMetric, Run, RunTag
from app.schemas import MetricKey, RunSummary
from app.services.errors import NotFound

SUMMARY_KEYS = tuple(RunSummary.model_fields)
RUN_COLUMNS = (
    Run.id,
    Run.name,
    Run.status,
    Run.spec,
    Run.sweep_id,
    Run.progress_epoch,
    Run.epochs,
    Run.summary,
    Run.device,
    Run.worker,
    Run.error,
    Run.created_at,
    Run.started_at,
    Run.finished_at,
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _tags(session: Session, run_ids: Sequence[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {run_id: [] for run_id in run_ids}
    if run_ids:
        rows = session.execute(
            select(RunTag.run_id, RunTag.tag)
            .where(RunTag.run_id.in_(run_ids))
            .order_by(RunTag.run_id, RunTag.position)
        )
        for run_id, tag in rows:
            tags[run_id].append(tag)
    return tags


def _views(session: Session, rows: Sequence[Any]) -> list[dict[str, Any]]:
    tags = _tags(session, [row.id for row in rows])
    return [
        {
            "id": row.id,
            "name": row.name,
            "tags": tags[row.id],
            "status": row.status,
            "spec": row.spec,
            "sweep_id": row.sweep_id,
            "progress": {"epoch": row.progress_epoch, "epochs": row.epochs},
            "summary": None if row.summary is None else {key: row.summary.get(key) for key in SUMMARY_KEYS},
            "device": row.device,
            "worker": row.worker,
            "error": row.error,
            "created_at": _time(row.created_at),
            "started_at": _time(row.started_at),
            "finished_at": _time(row.finished_at),
        }
        for row in rows
    ]


def run_json(*, session: Session, run_id: int) -> bytes:
    row = session.execute(select(*RUN_COLUMNS).where(Run.id == run_id)).first()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    return orjson.dumps(_views(session, [row])[0])


def runs_page_json(
    *, session: Session, filters: Sequence[ColumnElement[bool]], limit: int, offset: int
) -> bytes:
    count = session.scalar(select(func.count()).select_from(Run).where(*filters)) or 0
    rows = session.execute(
        select(*RUN_COLUMNS).where(*filters).order_by(Run.id.desc()).limit(limit).offset(offset)
    ).all()
    return orjson.dumps({"data": _views(session, rows), "count": count})


def history(*, session: Session, run_id: int, keys: Sequence[MetricKey]) -> dict[str, Any]:
    """A run's metrics as columns: {"run_id", "epoch": [...], key: [...] for each key}."""
    if session.scalar(select(Run.id).where(Run.id == run_id)) is None:
        raise NotFound(f"run {run_id} not found")
    columns = [getattr(EpochMetric, key.value) for key in keys]
    rows = session.execute(
        select(EpochMetric.epoch, *columns).where(EpochMetric.run_id == run_id).order_by(EpochMetric.epoch)
    ).all()
    result: dict[str, Any] = {"run_id": run_id, "epoch": [row[0] for row in rows]}
    for i, key in enumerate(keys, start=1):
        result[key.value] = [row[i] for row in rows]
    return result
