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
from sqlalchemy import ColumnElement, Select, Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from app.core.cache import ImmutableResponses
from app.core.db import Reader, dialect_name
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
    """The run's status and its epochs, a row each (one row of NULLs when it has none)."""
    columns = [getattr(EpochMetric, key.value) for key in keys]
    return (
        select(Run.status, EpochMetric.epoch, *columns)
        .outerjoin(EpochMetric, EpochMetric.run_id == Run.id)
        .where(Run.id == bindparam("run_id"))
        .order_by(EpochMetric.epoch)
    )


@lru_cache(maxsize=64)
def _history_json_statement(keys: tuple[MetricKey, ...]) -> Select[str, str]:
    """PostgreSQL: the status and the whole history as JSON text, built by the database. For 10,000
    epochs that is several times faster than making and serialising the rows in Python."""

    def in_order(column: Any) -> Any:
        aggregate = func.json_agg(aggregate_order_by(column, EpochMetric.epoch))
        return func.coalesce(aggregate.filter(EpochMetric.epoch.is_not(None)), literal_column("'[]'::json"))

    fields: list[Any] = [
        literal_column("'run_id'"),
        Run.id,
        literal_column("'epoch'"),
        in_order(EpochMetric.epoch),
    ]
    for key in keys:
        fields += [literal_column(f"'{key.value}'"), in_order(getattr(EpochMetric, key.value))]
    return (
        select(Run.status, cast(func.json_build_object(*fields), Text))
        .select_from(Run)
        .outerjoin(EpochMetric, EpochMetric.run_id == Run.id)
        .where(Run.id == bindparam("run_id"))
        .group_by(Run.id)
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
    """The page's ids, newest first, each with how many runs match: both from indexes alone, where
    reading the rows `offset` skips would read each of them whole."""
    matching = select(func.count()).select_from(Run).where(*filter_clauses(filters)).scalar_subquery()
    return (
        select(Run.id, matching.label("matching"))
        .where(*filter_clauses(filters))
        .order_by(Run.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


RUNS_BY_IDS = _with_tags(
    select(*RUN_COLUMNS).where(Run.id.in_(bindparam("run_ids", expanding=True))).subquery()
)


def runs_page_json(
    *,
    session: Reader,
    filters: tuple[str, ...],
    values: dict[str, Any],
    limit: int,
    offset: int,
    succeeded: ImmutableResponses,
) -> bytes:
    """A page of runs, newest first, and how many match. `filters` names the filters (see run_filters)
    and `values` gives their values. Succeeded runs come from `succeeded` when it has them (and go into
    it when it does not): a page of those costs one narrow query."""
    page = session.execute(_page_statement(filters), {**values, "limit": limit, "offset": offset}).all()
    if not page:  # past the end there is no row to carry the count
        count_all = select(func.count()).select_from(Run).where(*filter_clauses(filters))
        return orjson.dumps({"data": [], "count": session.scalar(count_all, values) or 0})
    bodies = {row.id: body for row in page if (body := succeeded.get(("run", row.id))) is not None}
    missing = [row.id for row in page if row.id not in bodies]
    if missing:
        for view in _views(session.execute(RUNS_BY_IDS, {"run_ids": missing})):
            body = bodies[view["id"]] = orjson.dumps(view)
            if view["status"] == RunStatus.succeeded:
                succeeded.put(("run", view["id"]), body)
    data = [orjson.Fragment(bodies[row.id]) for row in page]
    return orjson.dumps({"data": data, "count": page[0].matching})


def history(*, session: Reader, run_id: int, keys: Sequence[MetricKey]) -> dict[str, Any]:
    """A run's metrics as columns: {"run_id", "epoch": [...], key: [...] for each key}."""
    return history_and_status(session=session, run_id=run_id, keys=keys)[0]


def history_and_status(
    *, session: Reader, run_id: int, keys: Sequence[MetricKey]
) -> tuple[dict[str, Any], str]:
    """The history and the run's status, in one query (the outer join yields one row of NULLs for a run
    without epochs, and none for no run)."""
    names = ["epoch", *(key.value for key in keys)]
    rows = session.execute(_history_statement(tuple(keys)), {"run_id": run_id}).all()
    if not rows:
        raise NotFound(f"run {run_id} not found")
    status = rows[0][0]
    if rows[0][1] is None:
        rows = []
    result: dict[str, Any] = {"run_id": run_id}
    for i, name in enumerate(names, start=1):
        result[name] = [row[i] for row in rows]
    return result, status


def history_json_and_status(*, session: Reader, run_id: int, keys: Sequence[MetricKey]) -> tuple[bytes, str]:
    """The history as the metrics endpoint's JSON, and the run's status."""
    if dialect_name(session) == "postgresql":
        row = session.execute(_history_json_statement(tuple(keys)), {"run_id": run_id}).first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return row[1].encode(), row[0]
    history, status = history_and_status(session=session, run_id=run_id, keys=keys)
    return orjson.dumps(history), status
