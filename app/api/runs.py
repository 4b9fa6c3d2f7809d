import csv
import io
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from app.api.deps import RunId
from app.core import db, queue
from app.core.cache import ImmutableResponses
from app.core.db import session_scope
from app.models import RunStatus
from app.schemas import MetricKey, MetricsPublic, PredictionsPublic, RunCreate, RunPublic, RunsPublic
from app.services import run_views
from app.services import runs as run_service

router = APIRouter(prefix="/runs", tags=["runs"])

# The polled reads (status, list, JSON history) are async routes that query on the event loop itself.
# Each is one indexed query of about a millisecond (a 10,000-epoch history, the largest, about 15 ms),
# and succeeded runs come from memory. Under load a hop to the thread pool per request cost more than
# the query: threads wait for the interpreter lock behind the busy loop, and these requests queued for
# hundreds of milliseconds (benchmarks/load.py: p99 362 ms through threads, under 250 ms on the loop).

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No run has this id."}}


@router.post("", response_model=RunPublic, status_code=status.HTTP_201_CREATED)
def create_run(body: RunCreate) -> Response:
    """Queue a run; it trains as soon as a worker is free."""
    with session_scope() as session:
        run_id = run_service.create_run_from_request(session=session, body=body).id
        created = run_views.run_json(session=session, run_id=run_id)
    queue.enqueue_training([run_id])
    return Response(created, status_code=status.HTTP_201_CREATED, media_type="application/json")


@router.get("", response_model=RunsPublic)
async def list_runs(
    request: Request,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    sweep_id: Annotated[int | None, Query(ge=1, description="Only runs of this sweep.")] = None,
    tag: Annotated[str | None, Query(max_length=100, description="Only runs with this tag.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many runs.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Skip this many runs first.")] = 0,
) -> Response:
    """List runs, newest first."""
    filters, values = run_views.run_filters(status=status, sweep_id=sweep_id, tag=tag)
    page = db.read(
        lambda connection: run_views.runs_page_json(
            session=connection,
            filters=filters,
            values=values,
            limit=limit,
            offset=offset,
            succeeded=succeeded_responses(request),
        )
    )
    return Response(page, media_type="application/json")


def succeeded_responses(request: Request) -> ImmutableResponses:
    """What polling clients read most, kept for runs that succeeded: nothing writes to those again
    (see app/core/cache.py)."""
    cache: ImmutableResponses = request.app.state.succeeded_responses
    return cache


@router.get("/{run_id}", response_model=RunPublic, responses=NOT_FOUND)
async def read_run(run_id: RunId, request: Request) -> Response:
    """Read a run: status, progress, summary."""
    succeeded = succeeded_responses(request)
    key = ("run", run_id)
    body = succeeded.get(key)
    if body is None:
        view = db.read(lambda connection: run_views.run_view(session=connection, run_id=run_id))
        body = orjson.dumps(view)
        if view["status"] == RunStatus.succeeded:
            succeeded.put(key, body)
    return Response(body, media_type="application/json")


@router.post(
    "/{run_id}/cancel",
    response_model=RunPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 409: {"description": "The run has already ended."}},
)
def cancel_run(run_id: RunId) -> Response:
    """Cancel a queued or running run."""
    with session_scope() as session:
        run_service.cancel_run(session=session, run_id=run_id)
        cancelled = run_views.run_json(session=session, run_id=run_id)
    return Response(cancelled, status_code=status.HTTP_202_ACCEPTED, media_type="application/json")


def _parse_keys(keys: str | None) -> list[MetricKey] | None:
    if keys is None or not keys.strip():
        return None
    allowed = [key.value for key in MetricKey]
    chosen = [key.strip() for key in keys.split(",") if key.strip()]
    unknown = [key for key in chosen if key not in allowed]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "keys"),
                    "msg": f"unknown metric {', '.join(unknown)}; choose from {', '.join(allowed)}",
                    "type": "value_error",
                    "input": keys,
                }
            ]
        )
    return [MetricKey(key) for key in dict.fromkeys(chosen)]


@router.get(
    "/{run_id}/metrics",
    response_model=MetricsPublic,
    response_model_exclude_none=True,
    responses={**NOT_FOUND, 200: {"content": {"text/csv": {}}}},
)
async def read_metrics(
    run_id: RunId,
    request: Request,
    keys: Annotated[
        str | None,
        Query(
            description="Comma-separated metrics to return (default all): "
            + ", ".join(key.value for key in MetricKey),
            examples=["train_loss,val_loss"],
        ),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (columnar) or csv.")] = "json",
) -> Response:
    """Read a run's per-epoch history."""
    chosen = _parse_keys(keys) or list(MetricKey)
    succeeded = succeeded_responses(request)
    key = ("metrics", run_id, tuple(chosen))
    if format == "json":
        if (body := succeeded.get(key)) is None:
            body, run_status = db.read(
                lambda connection: run_views.history_json_and_status(
                    session=connection, run_id=run_id, keys=chosen
                )
            )
            if run_status == RunStatus.succeeded:
                succeeded.put(key, body)
        return Response(body, media_type="application/json")
    history = await run_in_threadpool(  # CSV is for downloads, not polling: off the event loop
        db.read, lambda connection: run_views.history(session=connection, run_id=run_id, keys=chosen)
    )
    columns = ["epoch", *(key.value for key in chosen)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    rows = zip(*(history[column] for column in columns), strict=True)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'},
    )


@router.get("/{run_id}/predictions", response_model=PredictionsPublic, responses=NOT_FOUND)
def read_predictions(
    run_id: RunId,
    offset: Annotated[int, Query(ge=0, description="Skip this many test points.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1_000_000, description="At most this many test points.")] = 10_000,
) -> PredictionsPublic:
    """Read the test split with the trained model's predictions."""
    with session_scope() as session:
        return run_service.get_predictions(session=session, run_id=run_id, offset=offset, limit=limit)
