"""Images of runs and sweeps (matplotlib, rendered on request): PNG, SVG, and the boundary's GIF.

The name's extension picks the format (`loss.png`, `loss.svg`); a bare name (`loss`) takes `format=`.
"""

import threading
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from app.api.deps import RunId, SweepId
from app.core.db import session_scope
from app.models import Run
from app.schemas import MetricKey, RunSpec, SummaryMetric
from app.services import frames, importance, plots, run_views, sweeps, tables
from app.services import runs as run_service
from app.services.datasets import Task
from app.services.errors import NotFound, Unprocessable
from app.services.plots import ImageFormat

router = APIRouter(tags=["plots"])
T = TypeVar("T")


RunPlot = Literal[
    "loss", "loss.png", "loss.svg",
    "predictions", "predictions.png", "predictions.svg",
    "boundary", "boundary.png", "boundary.svg", "boundary.gif",
]  # fmt: skip
SweepPlot = Literal[
    "heatmap", "heatmap.png", "heatmap.svg",
    "importance", "importance.png", "importance.svg",
    "parallel", "parallel.png", "parallel.svg",
    "curves", "curves.png", "curves.svg",
]  # fmt: skip
DEFAULT_SIZES = {
    "loss": (800, 500),
    "predictions": (1000, 450),
    "boundary": (640, 540),
    "heatmap": (720, 540),
    "importance": (720, 420),
    "parallel": (900, 500),
    "curves": (800, 680),
}
GIF_SIZE = (480, 420)
GIF_MAX_PIXELS = 1_000_000  # a frame's; a GIF keeps every frame whole
MAX_POINTS = 2000  # test points drawn: enough to see the data, few enough to draw fast
# Drawing is CPU-bound and holds the interpreter: a few at a time, however many clients ask at once.
RENDERING = threading.BoundedSemaphore(2)
FormatQuery = Annotated[
    Literal["png", "svg"] | None, Query(description="png or svg, for a name without an extension.")
]
Width = Annotated[int | None, Query(ge=100, le=3000, description="Width in pixels (PNG, GIF).")]
Height = Annotated[int | None, Query(ge=100, le=3000, description="Height in pixels (PNG, GIF).")]
IMAGES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/svg+xml": {}, "image/gif": {}}, "description": "The image."}
}


def _split(name: str, format: str | None) -> tuple[str, str]:
    plot, _, extension = name.partition(".")
    if extension and format and extension != format:
        raise Unprocessable(
            f"the name asks for {extension} but format= asks for {format}", loc=("query", "format")
        )
    return plot, extension or format or "png"


def _image(data: bytes, fmt: str) -> Response:
    return Response(data, media_type=plots.MEDIA_TYPES[fmt])


def _size(plot: str, width: int | None, height: int | None) -> tuple[int, int]:
    default_width, default_height = GIF_SIZE if plot == "gif" else DEFAULT_SIZES[plot]
    return width or default_width, height or default_height


def _sample(values: list[T]) -> list[T]:
    """At most MAX_POINTS of the values, evenly spread (the same ones for lists of the same length)."""
    step = -(-len(values) // MAX_POINTS)
    return values[::step]


def _run_title(view: dict[str, Any], spec: RunSpec) -> str:
    name = view["name"] or f"run {view['id']}"
    model = f"depth {spec.depth}, width {spec.width}" if spec.depth else "depth 0 (no hidden layer)"
    return f"{name}: {spec.dataset}, {model}"


def _loss(run_id: int, fmt: ImageFormat, size: tuple[int, int]) -> bytes:
    with session_scope(read_only=True) as session:
        view = run_views.run_view(session=session, run_id=run_id)
        history = run_views.history(session=session, run_id=run_id, keys=list(MetricKey))
    best_epoch = (view["summary"] or {}).get("best_epoch")
    title = _run_title(view, RunSpec.from_stored(view["spec"]))
    with RENDERING:
        return plots.loss_curves(
            history, best_epoch=best_epoch, title=title, fmt=fmt, width=size[0], height=size[1]
        )


def _predictions(run_id: int, fmt: ImageFormat, size: tuple[int, int]) -> bytes:
    with session_scope(read_only=True) as session:
        view = run_views.run_view(session=session, run_id=run_id)
        test = run_service.get_predictions(session=session, run_id=run_id, offset=0, limit=10**6)
        fit = frames.last_frame(session=session, run_id=run_id)
    spec = RunSpec.from_stored(view["spec"])
    title = _run_title(view, spec)
    inputs, targets, predictions = _sample(test.inputs), _sample(test.targets), _sample(test.predictions)
    if spec.task is Task.classification:
        with RENDERING:
            return plots.classification_predictions(
                inputs=inputs,
                targets=targets,
                probabilities=predictions,
                title=title,
                fmt=fmt,
                width=size[0],
                height=size[1],
            )
    fit_x = fit_y = None
    if fit is not None:
        fit_x = np.linspace(fit.bounds[0], fit.bounds[1], len(fit.values)).tolist()
        fit_y = fit.values.tolist()
    with RENDERING:
        return plots.regression_fit(
            inputs=[point[0] for point in inputs],
            targets=targets,
            predictions=predictions,
            fit_x=fit_x,
            fit_y=fit_y,
            title=title,
            fmt=fmt,
            width=size[0],
            height=size[1],
        )


def _boundary_frames(run_id: int) -> tuple[str, list[frames.Frame], list[list[float]], list[float]]:
    """The run's title, its frames, and the test points to draw over them (none while it trains)."""
    with session_scope(read_only=True) as session:
        view = run_views.run_view(session=session, run_id=run_id)
        spec = RunSpec.from_stored(view["spec"])
        if spec.task is not Task.classification:
            raise Unprocessable(
                f"run {run_id} is a regression: decision boundaries are drawn for classification runs; "
                "its fit over the input range is plots/predictions.png",
                loc=("path", "name"),
            )
        made = frames.load_frames(session=session, run_id=run_id)
        if not made:
            raise NotFound(
                f"run {run_id} has no boundary frames yet: its worker keeps them while it trains "
                "(SWEEPYARD_BOUNDARY_FRAMES, 0 turns them off)"
            )
        try:
            test = run_service.get_predictions(session=session, run_id=run_id, offset=0, limit=10**6)
            points, labels = _sample(test.inputs), _sample(test.targets)
        except NotFound:  # still training: the boundary alone
            points, labels = [], []
    return _run_title(view, spec), made, points, labels


def _boundary(run_id: int, fmt: ImageFormat, size: tuple[int, int], epoch: int | None) -> bytes:
    title, made, points, labels = _boundary_frames(run_id)
    frame = made[-1] if epoch is None else min(made, key=lambda f: abs(f.epoch - epoch))
    with RENDERING:
        return plots.decision_boundary(
            bounds=frame.bounds,
            probabilities=frame.values,
            points=points,
            labels=labels,
            epoch=frame.epoch,
            title=title,
            fmt=fmt,
            width=size[0],
            height=size[1],
        )


def _boundary_gif(run_id: int, size: tuple[int, int]) -> bytes:
    if size[0] * size[1] > GIF_MAX_PIXELS:
        raise Unprocessable(
            f"boundary.gif is at most {GIF_MAX_PIXELS:,} pixels a frame; asked for {size[0]} x {size[1]}",
            loc=("query", "width"),
        )
    title, made, points, labels = _boundary_frames(run_id)
    with RENDERING:
        return plots.boundary_animation(
            bounds=made[-1].bounds,
            frames=[(frame.epoch, frame.values) for frame in made],
            points=points,
            labels=labels,
            title=title,
            width=size[0],
            height=size[1],
        )


@router.get(
    "/runs/{run_id}/plots/{name}",
    responses={**IMAGES, 404: {"description": "No such run, or nothing to draw yet."}},
)
def run_plot(
    run_id: RunId,
    name: RunPlot,
    format: FormatQuery = None,
    width: Width = None,
    height: Height = None,
    epoch: Annotated[
        int | None, Query(ge=0, description="boundary: the frame nearest this epoch (default the last).")
    ] = None,
) -> Response:
    """Draw a run: loss curves, predictions, decision boundary, or the boundary through training (.gif)."""
    plot, fmt = _split(name, format)
    if fmt == "gif":
        return _image(_boundary_gif(run_id, _size("gif", width, height)), fmt)
    image_format: ImageFormat = "svg" if fmt == "svg" else "png"
    size = _size(plot, width, height)
    if plot == "loss":
        return _image(_loss(run_id, image_format, size), fmt)
    if plot == "predictions":
        return _image(_predictions(run_id, image_format, size), fmt)
    return _image(_boundary(run_id, image_format, size, epoch), fmt)


CURVES_DEFAULT = 10
CURVES_MAX = 50
MAX_ID = 2**63 - 1


def _parse_run_ids(run_ids: str | None) -> list[int] | None:
    if run_ids is None or not run_ids.strip():
        return None
    try:
        ids = list(dict.fromkeys(int(part) for part in run_ids.split(",") if part.strip()))
    except ValueError:
        raise Unprocessable(
            "run_ids must be run ids separated by commas, e.g. 3,7,9", loc=("query", "run_ids")
        ) from None
    if not 1 <= len(ids) <= CURVES_MAX or min(ids) < 1 or max(ids) > MAX_ID:
        raise Unprocessable(f"run_ids takes 1 to {CURVES_MAX} positive run ids", loc=("query", "run_ids"))
    return ids


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _curves(
    sweep_id: int, run_ids: list[int] | None, key: MetricKey
) -> tuple[list[tuple[str, Sequence[int], Sequence[float | None]]], str]:
    """Each run's curve of `key`, labelled with its swept values, and the plot's title."""
    with session_scope(read_only=True) as session:
        sweep = sweeps.get_sweep(session=session, sweep_id=sweep_id)
        config = sweeps.accepted_config(sweep)
        if run_ids is None:
            run_ids = sweeps.best_run_ids(session=session, sweep=sweep, config=config, limit=CURVES_DEFAULT)
        in_sweep = select(Run.id, Run.spec).where(Run.sweep_id == sweep_id, Run.id.in_(run_ids))
        specs: dict[int, dict[str, Any]] = {run_id: spec for run_id, spec in session.execute(in_sweep)}
        if foreign := [run_id for run_id in run_ids if run_id not in specs]:
            raise NotFound(f"run {foreign[0]} is not a run of sweep {sweep_id}")
        varied = [*config.parameters, *(["seed"] if config.repeats > 1 else [])]
        series = []
        for run_id in run_ids:
            history = run_views.history(session=session, run_id=run_id, keys=[key])
            label = f"#{run_id} " + ", ".join(f"{name}={_short(specs[run_id].get(name))}" for name in varied)
            series.append((label, history["epoch"], history[key.value]))
    return series, f"sweep {sweep_id}: {key.value} of {len(series)} runs"


@router.get(
    "/sweeps/{sweep_id}/plots/{name}",
    responses={**IMAGES, 404: {"description": "No such sweep, or no such run in run_ids."}},
)
def sweep_plot(
    sweep_id: SweepId,
    name: SweepPlot,
    format: FormatQuery = None,
    width: Width = None,
    height: Height = None,
    rows: Annotated[str | None, Query(description="heatmap: parameter of the rows.")] = None,
    cols: Annotated[str | None, Query(description="heatmap: parameter of the columns.")] = None,
    metric: Annotated[
        SummaryMetric | None, Query(description="heatmap, importance, parallel: default the sweep's metric.")
    ] = None,
    run_ids: Annotated[
        str | None,
        Query(description=f"curves: comma-separated run ids (default the sweep's {CURVES_DEFAULT} best)."),
    ] = None,
    curve: Annotated[
        MetricKey, Query(description="curves: the per-epoch metric drawn.")
    ] = MetricKey.val_loss,
) -> Response:
    """Draw a sweep: the depth x width heatmap, importance bars, parallel coordinates, or runs' curves."""
    plot, fmt = _split(name, format)
    image_format: ImageFormat = "svg" if fmt == "svg" else "png"
    width, height = _size(plot, width, height)
    if plot == "curves":
        series, title = _curves(sweep_id, _parse_run_ids(run_ids), curve)
        with RENDERING:
            image = plots.overlaid_curves(
                series, metric=curve.value, title=title, fmt=image_format, width=width, height=height
            )
        return _image(image, fmt)
    # Read, then draw: no database connection is held while matplotlib works.
    with session_scope(read_only=True) as session:
        if plot == "heatmap":
            table = tables.sweep_table(
                session=session, sweep_id=sweep_id, rows=rows or None, cols=cols or None, metric=metric
            )
        elif plot == "importance":
            ranked = importance.sweep_importance(session=session, sweep_id=sweep_id, metric=metric)
        else:
            parallel = tables.sweep_parallel(session=session, sweep_id=sweep_id, metric=metric)
            goal = sweeps.accepted_config(sweeps.get_sweep(session=session, sweep_id=sweep_id)).metric.goal
    with RENDERING:
        if plot == "heatmap":
            image = plots.heatmap(table, fmt=image_format, width=width, height=height)
        elif plot == "importance":
            image = plots.importance_bars(ranked, fmt=image_format, width=width, height=height)
        else:
            image = plots.parallel_coordinates(
                parallel, goal=goal, fmt=image_format, width=width, height=height
            )
    return _image(image, fmt)
