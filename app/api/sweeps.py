import json
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.deps import SweepId
from app.core import queue
from app.core.db import session_scope
from app.schemas import (
    SummaryMetric,
    SweepConfig,
    SweepImportance,
    SweepParallel,
    SweepPublic,
    SweepsPublic,
    SweepTable,
)
from app.services import importance, sweeps, tables
from app.services.errors import Unprocessable

router = APIRouter(prefix="/sweeps", tags=["sweeps"])

MetricQuery = Annotated[
    SummaryMetric | None, Query(description="A summary metric; default the sweep's own metric.")
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No sweep has this id."}}
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_CONFIG_BYTES = 1_000_000

CONFIG_BODY = {
    "requestBody": {
        "required": True,
        "description": "A W&B-style sweep config as JSON, or as YAML with Content-Type: application/yaml.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SweepConfig"}},
            "application/yaml": {
                "schema": {"$ref": "#/components/schemas/SweepConfig"},
                "example": "method: grid\nparameters:\n  depth: {values: [0, 1, 2, 3]}\n"
                "  width: {values: [1, 2, 3]}\nrepeats: 5\n",
            },
        },
    }
}


async def read_config(request: Request) -> SweepConfig:
    """Parse the body as JSON or YAML (safe loader only) and validate it, errors located under body."""
    raw = await request.body()
    if len(raw) > MAX_CONFIG_BYTES:
        raise Unprocessable(f"the config is {len(raw)} bytes; the limit is {MAX_CONFIG_BYTES}")
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        data = yaml.safe_load(raw) if content_type in YAML_TYPES else json.loads(raw)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "YAML" if content_type in YAML_TYPES else "JSON"
        raise Unprocessable(f"the body is not valid {kind}: {exc}") from exc
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from exc


@router.post(
    "",
    response_model=SweepPublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=CONFIG_BODY,
    responses={422: {"description": "The config names what is wrong."}},
)
async def create_sweep(request: Request) -> SweepPublic:
    """Create a sweep and queue its runs (JSON, or YAML with Content-Type: application/yaml)."""
    config = await read_config(request)
    with session_scope() as session:
        sweep, bundles = sweeps.create_sweep(session=session, config=config)
        sweep_id = sweep.id
    for bundle in bundles:
        queue.enqueue_training(bundle)
    with session_scope() as session:
        return sweeps.read_sweep(session=session, sweep_id=sweep_id)


@router.get("", response_model=SweepsPublic)
def list_sweeps(
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many sweeps.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Skip this many sweeps first.")] = 0,
) -> SweepsPublic:
    """List sweeps, newest first."""
    with session_scope() as session:
        return sweeps.list_sweeps(session=session, limit=limit, offset=offset)


@router.get("/{sweep_id}", response_model=SweepPublic, responses=NOT_FOUND)
def read_sweep(sweep_id: SweepId) -> SweepPublic:
    """Read a sweep: status, counts by run status, best run, accepted config."""
    with session_scope() as session:
        return sweeps.read_sweep(session=session, sweep_id=sweep_id)


@router.post(
    "/{sweep_id}/cancel",
    response_model=SweepPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 409: {"description": "The sweep has already finished or been cancelled."}},
)
def cancel_sweep(sweep_id: SweepId) -> SweepPublic:
    """Cancel a sweep: its queued runs never start, its running runs stop."""
    with session_scope() as session:
        return sweeps.cancel_sweep(session=session, sweep_id=sweep_id)


@router.get(
    "/{sweep_id}/table",
    response_model=SweepTable,
    responses={**NOT_FOUND, 200: {"content": {"text/csv": {}, "text/markdown": {}}}},
)
def read_table(
    sweep_id: SweepId,
    rows: Annotated[str | None, Query(description="Parameter of the rows; default the first swept.")] = None,
    cols: Annotated[
        str | None, Query(description="Parameter of the columns; default the second swept.")
    ] = None,
    metric: MetricQuery = None,
    format: Annotated[
        Literal["json", "csv", "markdown"], Query(description="json, csv or markdown.")
    ] = "json",
) -> SweepTable | Response:
    """Tabulate mean, std (ddof=1) and n of a metric by two parameters."""
    # An empty value (`cols=`) means "no such axis", as when left out.
    with session_scope() as session:
        table = tables.sweep_table(
            session=session, sweep_id=sweep_id, rows=rows or None, cols=cols or None, metric=metric
        )
    if format == "csv":
        return Response(tables.table_csv(table), media_type="text/csv")
    if format == "markdown":
        return Response(tables.table_markdown(table), media_type="text/markdown")
    return table


@router.get("/{sweep_id}/importance", response_model=SweepImportance, responses=NOT_FOUND)
def read_importance(sweep_id: SweepId, metric: MetricQuery = None) -> SweepImportance:
    """Rank the swept parameters by importance for a metric, with their correlations."""
    with session_scope() as session:
        return importance.sweep_importance(session=session, sweep_id=sweep_id, metric=metric)


@router.get("/{sweep_id}/parallel", response_model=SweepParallel, responses=NOT_FOUND)
def read_parallel(sweep_id: SweepId, metric: MetricQuery = None) -> SweepParallel:
    """Parallel-coordinates data: each succeeded run's parameters and metric."""
    with session_scope() as session:
        return tables.sweep_parallel(session=session, sweep_id=sweep_id, metric=metric)
