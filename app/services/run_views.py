"""The hot read paths of runs: Core queries shaped straight into JSON bytes.

Status, list and history are what dashboards poll. Loading ORM objects and validating stored data
again through Pydantic cost several times the queries themselves, so these views select the columns
they need and build the same JSON that RunPublic and MetricsPublic document. What they read was
validated when it was written.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, bindparam, func, select

from app.core.db import Reader
from app.models import EpochMetric, Run, RunStatus, RunTag
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


def _view(row: Any, tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "tags": tags,
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


def _views(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Views of runs from rows of (run columns..., tag): one row per tag, one with tag NULL if none."""
    views: list[dict[str, Any]] = []
    for row in rows:
        if not views or views[-1]["id"] != row.id:
            views.append(_view(row, []))
        if row.tag is not None:
            views[-1]["tags"].append(row.tag)
    return views


def _with_tags(runs: Any) -> Select[Any]:
    """The runs of a subquery with their tags joined on, in their order, tags in their order."""
    return (
        select(runs, RunTag.tag)
        .outerjoin(RunTag, RunTag.run_id == runs.c.id)
        .order_by(runs.c.id.desc(), RunTag.position)
    )


# Built once: a statement object keeps its cache key, so executing it again costs no construction.
RUN_BY_ID = _with_tags(select(*RUN_COLUMNS).where(Run.id == bindparam("run_id")).subquery())


@lru_cache(maxsize=64)
def _history_statement(keys: tuple[MetricKey, ...]) -> Select[Any]:
    columns = [getattr(EpochMetric, key.value) for key in keys]
    return (
        select(Run.status, EpochMetric.epoch, *columns)
        .outerjoin(EpochMetric, EpochMetric.run_id == Run.id)
        .where(Run.id == bindparam("run_id"))
        .order_by(EpochMetric.epoch)
    )


def run_view(*, session: Reader, run_id: int) -> dict[str, Any]:
    """The run as RunPublic describes it, in one query."""
    views = _views(session.execute(RUN_BY_ID, {"run_id": run_id}))
    if not views:
        raise NotFound(f"run {run_id} not found")
    return views[0]


def run_json(*, session: Reader, run_id: int) -> bytes:
    return orjson.dumps(run_view(session=session, run_id=run_id))


def run_filters(
    *, status: RunStatus | None = None, sweep_id: int | None = None, tag: str | None = None
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Which filters a list asks for, and their values: the names pick a statement built once
    (run_views.runs_page_json), the values are its parameters."""
    values: dict[str, Any] = {"status": status and status.value, "sweep_id": sweep_id, "tag": tag}
    chosen = {name: value for name, value in values.items() if value is not None}
    return tuple(chosen), chosen


def filter_clauses(names: Iterable[str]) -> list[ColumnElement[bool]]:
    clauses: dict[str, ColumnElement[bool]] = {
        "status": Run.status == bindparam("status"),
        "sweep_id": Run.sweep_id == bindparam("sweep_id"),
        "tag": Run.tag_rows.any(RunTag.tag == bindparam("tag")),
    }
    return [clauses[name] for name in names]


@lru_cache(maxsize=16)
def _page_statement(filters: tuple[str, ...]) -> Select[Any]:
    page = (
        select(*RUN_COLUMNS, func.count().over().label("matching"))
        .where(*filter_clauses(filters))
        .order_by(Run.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery()
    )
    return _with_tags(page)


def runs_page_json(
    *, session: Reader, filters: tuple[str, ...], values: dict[str, Any], limit: int, offset: int
) -> bytes:
    """A page of runs, newest first, and how many match, in one query (a window count over the filter).
    `filters` names the filters (see runs.run_filters) and `values` gives their values."""
    rows = session.execute(_page_statement(filters), {**values, "limit": limit, "offset": offset}).all()
    if rows:
        count = rows[0].matching
    else:  # past the end, the window has no row to report the count on
        count_all = select(func.count()).select_from(Run).where(*filter_clauses(filters))
        count = session.scalar(count_all, values) or 0
    return orjson.dumps({"data": _views(rows), "count": count})


def history(*, session: Reader, run_id: int, keys: Sequence[MetricKey]) -> dict[str, Any]:
    """A run's metrics as columns: {"run_id", "epoch": [...], key: [...] for each key}."""
    return history_and_status(session=session, run_id=run_id, keys=keys)[0]


def history_and_status(
    *, session: Reader, run_id: int, keys: Sequence[MetricKey]
) -> tuple[dict[str, Any], str]:
    """The history and the run's status, in one query (the outer join yields one row of NULLs for a run
    without epochs, and none for no run)."""
    rows = session.execute(_history_statement(tuple(keys)), {"run_id": run_id}).all()
    if not rows:
        raise NotFound(f"run {run_id} not found")
    status = rows[0][0]
    if rows[0][1] is None:
        rows = []
    result: dict[str, Any] = {"run_id": run_id, "epoch": [row[1] for row in rows]}
    for i, key in enumerate(keys, start=2):
        result[key.value] = [row[i] for row in rows]
    return result, status
