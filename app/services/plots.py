"""Figures of runs and sweeps, rendered to PNG, SVG or animated GIF bytes.

Only matplotlib's object API is used (Figure and FigureCanvasAgg; never pyplot, rcParams or rc_context):
pyplot keeps a global registry of figures and rcParams are process-wide, while the API renders figures
from several threads at once. Where a test needs to look inside a figure, a `_*_figure` builder makes it
and the public function renders it.
"""

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.contour import QuadContourSet
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, MaxNLocator
from matplotlib.transforms import BboxBase
from numpy.typing import NDArray
from PIL import Image

from app.schemas import SweepImportance, SweepParallel, SweepTable

ImageFormat = Literal["png", "svg"]
FloatArray = NDArray[np.float64]
History = Mapping[str, Sequence[float | None]]  # columns: epoch, train_loss, val_loss, val_accuracy, ...
Series = Sequence[tuple[str, Sequence[int], Sequence[float | None]]]  # (label, epochs, values) per run
Points = Sequence[Sequence[float]]  # [n][2]
Grid = Sequence[Sequence[float]] | NDArray[np.floating[Any]]  # [ny][nx], row 0 at y_min, column 0 at x_min

MEDIA_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml", "gif": "image/gif"}
DPI = 100
BOUNDARY_CMAP = "RdBu_r"
# Lighter than the ends of RdBu_r, so that points stay visible where the model is sure of itself.
LABEL_COLOURS = ("#4393c3", "#d6604d")
LAST_FRAME_MS = 1500
GIF_COLOURS = 128


class _AggCanvas(Protocol):
    """What is used of FigureCanvasAgg, typed: matplotlib's backends ship no type hints."""

    def draw(self) -> None: ...
    def copy_from_bbox(self, bbox: BboxBase) -> Any: ...
    def restore_region(self, region: Any) -> None: ...
    def buffer_rgba(self) -> memoryview: ...


def render(fig: Figure, fmt: ImageFormat) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=DPI)
    return buf.getvalue()


def _figure(width: int, height: int) -> Figure:
    # figsize x dpi is the size in pixels; constrained layout, unlike bbox_inches="tight", keeps it exact.
    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained", facecolor="white")


def _style(ax: Axes) -> None:
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def _empty(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _floats(values: Sequence[float | None] | None) -> FloatArray:
    # None becomes NaN, which matplotlib draws as a gap in the line.
    return np.array([math.nan if v is None else v for v in values or ()], dtype=float)


def _label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_log_spaced(values: FloatArray, ratio: float) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size) and finite.min() > 0 and finite.max() / finite.min() > ratio


def _quality_cmap(higher_is_better: bool) -> str:
    # The good end is the dark one: dark stands out on white, and the best runs are the ones to find.
    return "viridis_r" if higher_is_better else "viridis"


def _loss_figure(history: History, best_epoch: int | None, title: str, width: int, height: int) -> Figure:
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.set_title(title)
    epochs = _floats(history.get("epoch"))
    if epochs.size == 0:
        _empty(ax, "no epochs recorded yet")
        return fig
    _style(ax)
    train, val = _floats(history.get("train_loss")), _floats(history.get("val_loss"))
    if train.size:
        ax.plot(epochs, train, color="tab:blue", label="train loss")
    if val.size:
        ax.plot(epochs, val, color="tab:orange", label="validation loss")
    if _is_log_spaced(np.concatenate([train, val]), 20):
        ax.set_yscale("log")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="0.4", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
        at = np.flatnonzero(epochs == best_epoch)
        if at.size and val.size:
            ax.plot(best_epoch, val[at[0]], marker="o", color="tab:orange", markeredgecolor="0.2", zorder=3)
    ax.set(xlabel="epoch", ylabel="loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top = ax
    accuracy = _floats(history.get("val_accuracy"))
    if np.isfinite(accuracy).any():
        top = ax.twinx()
        top.plot(epochs, accuracy, color="tab:green", linestyle=":", label="validation accuracy")
        top.set(ylim=(0, 1), ylabel="validation accuracy")
        top.spines["top"].set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    if top is not ax:
        more_handles, more_labels = top.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        # On the upper axes: on the lower one, the accuracy line would cross the legend.
        top.legend(handles, labels, fontsize="small")
    return fig


def loss_curves(
    history: History, *, best_epoch: int | None, title: str, fmt: ImageFormat, width: int, height: int
) -> bytes:
    return render(_loss_figure(history, best_epoch, title, width, height), fmt)


def _overlaid_figure(series: Series, metric: str, title: str, width: int, height: int) -> Figure:
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.set_title(title)
    if not series:
        _empty(ax, "no runs to compare")
        return fig
    _style(ax)
    n = len(series)
    if n <= 20:
        colours = matplotlib.colormaps["tab10" if n <= 10 else "tab20"](np.arange(n))
    else:
        colours = matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, n))
    curves = [_floats(values) for _, _, values in series]
    for (label, epochs, _), values, colour in zip(series, curves, colours, strict=True):
        ax.plot(list(epochs), values, color=colour, linewidth=1.3, label=label)
    if "loss" in metric and _is_log_spaced(np.concatenate(curves), 20):
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel=metric.replace("_", " "))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if max(len(label) for label, _, _ in series) > 30:  # long labels go under the axes, not over curves
        fig.legend(loc="outside lower center", fontsize="x-small", ncols=1 if n <= 12 else 2, frameon=False)
    elif n <= 10:
        ax.legend(fontsize="small")
    else:
        fig.legend(loc="outside right upper", fontsize="x-small", ncols=1 + n // 25)
    return fig


def overlaid_curves(
    series: Series, *, metric: str, title: str, fmt: ImageFormat, width: int, height: int
) -> bytes:
    return render(_overlaid_figure(series, metric, title, width, height), fmt)


def regression_fit(
    *,
    inputs: Sequence[float],
    targets: Sequence[float],
    predictions: Sequence[float],
    fit_x: Sequence[float] | None,
    fit_y: Sequence[float] | None,
    title: str,
    fmt: ImageFormat,
    width: int,
    height: int,
) -> bytes:
    fig = _figure(width, height)
    fig.suptitle(title)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x, y, p = (np.asarray(v, dtype=float) for v in (inputs, targets, predictions))
    _style(left)
    left.scatter(x, y, s=12, alpha=0.6, color="0.35", label="test points")
    if fit_x is not None and fit_y is not None:
        left.plot(fit_x, fit_y, color="tab:red", linewidth=2, label="model")
    else:
        order = np.argsort(x)
        left.plot(x[order], p[order], color="tab:red", linewidth=2, label="model")
    left.set(title="Fit over the input range", xlabel="x (standardised)", ylabel="y (standardised)")
    left.legend(fontsize="small")
    _style(right)
    right.scatter(y, p, s=12, alpha=0.6, color="tab:blue", label="test points")
    mse = "n/a"
    if y.size:
        lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        right.plot([lo, hi], [lo, hi], color="0.3", linestyle="--", linewidth=1, label="y = x")
        mse = f"{float(np.mean((p - y) ** 2)):.4g}"
    right.set(title=f"Predictions against targets\ntest MSE {mse}", xlabel="target y (standardised)")
    right.set_ylabel("predicted y (standardised)")
    right.legend(fontsize="small")
    return render(fig, fmt)


def _points(points: Points) -> FloatArray:
    xy = np.asarray(points, dtype=float).reshape(len(points), -1) if len(points) else np.empty((0, 2))
    if xy.shape[1] != 2:
        raise ValueError(f"points must be 2-D to plot, not {xy.shape[1]}-D")
    return xy


def classification_predictions(
    *,
    inputs: Points,
    targets: Sequence[float],
    probabilities: Sequence[float],
    title: str,
    fmt: ImageFormat,
    width: int,
    height: int,
) -> bytes:
    xy, probs = _points(inputs), np.asarray(probabilities, dtype=float)
    truth = np.asarray(targets, dtype=float) >= 0.5
    wrong = (probs >= 0.5) != truth
    fig = _figure(width, height)
    ax = fig.add_subplot()
    _style(ax)
    norm = Normalize(0, 1)
    for label, marker in ((False, "o"), (True, "^")):
        at = truth == label
        style: dict[str, Any] = {"cmap": BOUNDARY_CMAP, "norm": norm, "marker": marker, "s": 28}
        style["edgecolors"] = ["red" if w else "0.25" for w in wrong[at]]
        style["linewidths"] = [1.6 if w else 0.4 for w in wrong[at]]
        ax.scatter(xy[at, 0], xy[at, 1], c=probs[at], **style)
    legend_style: dict[str, Any] = {"linestyle": "", "color": "0.75", "markeredgecolor": "0.25"}
    handles = [Line2D([], [], marker=m, label=f"true label {i}", **legend_style) for i, m in enumerate("o^")]
    legend_style.update(markerfacecolor="none", markeredgecolor="red", markeredgewidth=1.6)
    handles.append(Line2D([], [], marker="o", label=f"misclassified ({int(wrong.sum())})", **legend_style))
    ax.legend(handles=handles, fontsize="small")
    fig.colorbar(ScalarMappable(norm=norm, cmap=BOUNDARY_CMAP), ax=ax, label="predicted P(label 1)")
    accuracy = f"{1 - wrong.mean():.1%}" if wrong.size else "n/a"
    ax.set(title=f"{title}\ntest accuracy {accuracy}", xlabel="x1", ylabel="x2")
    return render(fig, fmt)


def _epoch_title(title: str, epoch: int | None) -> str:
    return title if epoch is None else f"{title} — epoch {epoch}"


def _half_contour(ax: Axes, probs: FloatArray, bounds: Sequence[float]) -> QuadContourSet | None:
    # Where no value crosses 0.5, matplotlib would warn and draw the lowest value's contour instead.
    if not np.nanmin(probs) < 0.5 < np.nanmax(probs):
        return None
    ny, nx = probs.shape
    xs, ys = np.linspace(bounds[0], bounds[1], nx), np.linspace(bounds[2], bounds[3], ny)
    return ax.contour(xs, ys, probs, levels=[0.5], colors="black", linewidths=1.5)


def _boundary_figure(
    bounds: Sequence[float],
    probabilities: Grid,
    points: Points,
    labels: Sequence[float],
    epoch: int | None,
    title: str,
    width: int,
    height: int,
) -> tuple[Figure, Axes, AxesImage, QuadContourSet | None]:
    x_min, x_max, y_min, y_max = (float(b) for b in bounds)
    probs = np.asarray(probabilities, dtype=float)
    ny, nx = probs.shape
    dx, dy = (x_max - x_min) / max(nx - 1, 1), (y_max - y_min) / max(ny - 1, 1)
    fig = _figure(width, height)
    ax = fig.add_subplot()
    # The grid's values belong at the pixel centres, so the image reaches half a cell past the bounds.
    extent = (x_min - dx / 2, x_max + dx / 2, y_min - dy / 2, y_max + dy / 2)
    style: dict[str, Any] = {"cmap": BOUNDARY_CMAP, "vmin": 0, "vmax": 1, "aspect": "auto", "alpha": 0.75}
    image = ax.imshow(probs, origin="lower", extent=extent, interpolation="bilinear", **style)
    ax.set(
        xlim=(x_min, x_max), ylim=(y_min, y_max), xlabel="x1", ylabel="x2", title=_epoch_title(title, epoch)
    )
    contour = _half_contour(ax, probs, (x_min, x_max, y_min, y_max))
    xy, truth = _points(points), np.asarray(labels, dtype=float) >= 0.5
    style = {"s": 18 if len(xy) <= 400 else 8, "edgecolors": "0.1", "linewidths": 0.5}
    for label, colour in enumerate(LABEL_COLOURS):
        at = truth == bool(label)
        ax.scatter(xy[at, 0], xy[at, 1], color=colour, label=f"label {label}", **style)
    handles, names = ax.get_legend_handles_labels()
    handles.insert(0, Line2D([], [], color="black", linewidth=1.5))
    # Below the axes, where it hides no point and stays out of what the animation redraws.
    fig.legend(
        handles, ["p = 0.5", *names], loc="outside lower center", ncols=3, fontsize="small", frameon=False
    )
    fig.colorbar(image, ax=ax, label="P(label 1)")
    return fig, ax, image, contour


def decision_boundary(
    *,
    bounds: Sequence[float],
    probabilities: Grid,
    points: Points,
    labels: Sequence[float],
    epoch: int | None,
    title: str,
    fmt: ImageFormat,
    width: int,
    height: int,
) -> bytes:
    fig = _boundary_figure(bounds, probabilities, points, labels, epoch, title, width, height)[0]
    return render(fig, fmt)


def boundary_animation(
    *,
    bounds: Sequence[float],
    frames: Sequence[tuple[int, Grid]],
    points: Points,
    labels: Sequence[float],
    title: str,
    width: int,
    height: int,
    frame_ms: int = 120,
) -> bytes:
    """An animated GIF of the boundary, one frame per (epoch, grid). Consecutive identical frames come out
    as one frame shown for their total time (Pillow merges them)."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    epoch, grid = frames[0]
    fig, ax, image, contour = _boundary_figure(bounds, grid, points, labels, epoch, title, width, height)
    canvas: _AggCanvas = FigureCanvasAgg(fig)
    # Lay out once and freeze it, and draw what never changes once; each frame then draws only the image,
    # the contour and what lies on top of them (points, frame, title): a full draw is 5x slower.
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    scatters = [collection for collection in ax.collections if collection is not contour]
    on_top = [*scatters, *ax.spines.values(), ax.title]
    for artist in (image, contour, *on_top):
        if artist is not None:
            artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    images: list[Image.Image] = []
    palette: Image.Image | None = None
    for epoch, grid in frames:
        probs = np.asarray(grid, dtype=float)
        image.set_data(probs)
        if contour is not None:
            contour.remove()
        contour = _half_contour(ax, probs, bounds)
        ax.set_title(_epoch_title(title, epoch))
        canvas.restore_region(background)
        for artist in (image, contour, *on_top):
            if artist is not None:
                ax.draw_artist(artist)
        rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
        # One palette for every frame, and no dithering: the colours are the same throughout, and dither
        # noise that changes from frame to frame would shimmer and would double the file's size.
        if palette is None:
            palette = rgb.quantize(GIF_COLOURS, dither=Image.Dither.NONE)
        images.append(rgb.quantize(palette=palette, dither=Image.Dither.NONE))
    durations = [frame_ms] * (len(images) - 1) + [max(frame_ms, LAST_FRAME_MS)]
    buf = io.BytesIO()
    rest = images[1:]
    images[0].save(buf, "GIF", save_all=True, append_images=rest, duration=durations, loop=0, optimize=False)
    return buf.getvalue()


def _heatmap_figure(table: SweepTable, width: int, height: int) -> Figure:
    fig = _figure(width, height)
    ax = fig.add_subplot()
    metric = str(table.metric)
    averaged = f"\n(averaged over: {', '.join(table.averaged_over)})" if table.averaged_over else ""
    ax.set_title(f"{metric}: mean ± std over seeds{averaged}")
    if not table.cells:
        _empty(ax, "no finished runs yet")
        return fig
    col_values = table.col_values if table.cols is not None else [None]
    row_at = {value: i for i, value in enumerate(table.row_values)}
    col_at = {value: i for i, value in enumerate(col_values)}
    means = np.full((len(row_at), len(col_at)), np.nan)
    for cell in table.cells:
        means[row_at[cell.row], col_at[cell.col]] = cell.mean
    cmap = matplotlib.colormaps[_quality_cmap("accuracy" in metric)].with_extremes(bad="0.9")
    image = ax.imshow(means, cmap=cmap, aspect="auto")
    luminance = np.asarray(cmap(image.norm(means)))[..., :3] @ np.array([0.2126, 0.7152, 0.0722])
    # Three lines of text to a cell: as large as fits, up to 10 pt; below 5 pt the colours say it alone.
    size = min(10.0, 0.1 * height / means.shape[0], 0.12 * width / means.shape[1])
    for cell in table.cells if size >= 5 else ():
        row, col = row_at[cell.row], col_at[cell.col]
        colour = "black" if luminance[row, col] > 0.5 else "white"
        std = "–" if cell.std is None else f"{cell.std:.2g}"
        text: dict[str, Any] = {"ha": "center", "va": "center", "color": colour}
        ax.text(col, row - 0.08, f"{cell.mean:.3g}\n± {std}", fontsize=size, **text)
        ax.text(col, row + 0.32, f"n={cell.n}", fontsize=0.8 * size, **text)
    ax.set_yticks(range(len(row_at)), labels=[_label(v) for v in table.row_values])
    ax.set_ylabel(table.rows)
    if table.cols is None:
        ax.set_xticks([])
    else:
        ax.set_xticks(range(len(col_at)), labels=[_label(v) for v in col_values])
        ax.set_xlabel(table.cols)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, label=metric)
    return fig


def heatmap(table: SweepTable, *, fmt: ImageFormat, width: int, height: int) -> bytes:
    return render(_heatmap_figure(table, width, height), fmt)


def _importance_figure(importance: SweepImportance, width: int, height: int) -> Figure:
    fig = _figure(width, height)
    ax = fig.add_subplot()
    # The evaluator's name is long ("optuna.importance.X (how)"): its class name, on a line of its own.
    evaluator = importance.evaluator.split(" ")[0].rsplit(".", 1)[-1]
    ax.set_title(f"Importance for {importance.metric} over {importance.n_runs} runs\n{evaluator}")
    parameters = sorted(importance.parameters, key=lambda p: p.importance, reverse=True)
    if not parameters:
        _empty(ax, "no varying parameters")
        return fig
    _style(ax)
    ax.grid(axis="y", visible=False)
    values = [p.importance for p in parameters]
    ax.barh(range(len(values)), values, height=0.6, color="tab:blue")
    ax.set_yticks(range(len(values)), labels=[p.name for p in parameters])
    ax.invert_yaxis()
    right = max(*values, 0.05)
    for i, parameter in enumerate(parameters):
        r = "n/a" if parameter.correlation is None else f"{parameter.correlation:.2f}"
        ax.text(parameter.importance + 0.02 * right, i, f"r = {r}", va="center", fontsize="small")
    ax.set(xlim=(0, 1.3 * right), xlabel="importance (share of the metric's variation explained)")
    return fig


def importance_bars(importance: SweepImportance, *, fmt: ImageFormat, width: int, height: int) -> bytes:
    return render(_importance_figure(importance, width, height), fmt)


def _category(value: Any) -> tuple[int, Any]:
    # Numbers in numeric order, then anything else by its text.
    return (0, value) if _is_number(value) else (1, str(value))


def _axis(values: Sequence[Any]) -> tuple[FloatArray, list[tuple[float, str]]]:
    """Each value's place on a 0..1 axis, and the ticks (place, text) to label the axis with."""
    if not all(_is_number(v) for v in values):
        keys = sorted({_category(v) for v in values})
        spots = {key: i / (len(keys) - 1) if len(keys) > 1 else 0.5 for i, key in enumerate(keys)}
        return np.array([spots[_category(v)] for v in values]), [(spots[k], _label(k[1])) for k in keys]
    numbers = np.asarray(values, dtype=float)
    lo, hi = float(numbers.min()), float(numbers.max())
    if lo == hi:
        return np.full(len(numbers), 0.5), [(0.5, _label(lo))]
    log = _is_log_spaced(numbers, 50)

    def place(v: FloatArray) -> FloatArray:
        return np.log(v / lo) / math.log(hi / lo) if log else (v - lo) / (hi - lo)

    locator = LogLocator() if log else MaxNLocator(4, integer=all(float(v).is_integer() for v in values))
    inner = np.asarray(locator.tick_values(lo, hi), dtype=float)
    ticks = np.array([lo, *inner[(place(inner) > 0.1) & (place(inner) < 0.9)], hi])
    return place(numbers), [(float(t), _label(float(v))) for t, v in zip(place(ticks), ticks, strict=True)]


def _parallel_figure(parallel: SweepParallel, goal: str, width: int, height: int) -> Figure:
    if goal not in ("minimize", "maximize"):
        raise ValueError(f"goal must be minimize or maximize, not {goal!r}")
    metric = str(parallel.metric)
    runs = [
        (row.value, row.params) for row in parallel.data if row.value is not None and _is_number(row.value)
    ]
    # Worst first, so that the best runs are drawn last, on top.
    runs.sort(key=lambda run: run[0], reverse=goal == "minimize")
    fig = _figure(width, height)
    ax = fig.add_subplot()
    skipped = len(parallel.data) - len(runs)
    left_out = f", {skipped} without a value left out" if skipped else ""
    ax.set_title(f"Sweep {parallel.sweep_id}: {metric} ({goal}) over {len(runs)} runs{left_out}")
    if not runs:
        _empty(ax, "no finished runs yet")
        return fig
    values = np.array([value for value, _ in runs])
    names = [*parallel.parameters, metric]
    axes = [_axis([params.get(name) for _, params in runs]) for name in parallel.parameters]
    axes.append(_axis(list(values)))
    xs = np.arange(len(names), dtype=float)
    ys = np.column_stack([places for places, _ in axes])
    lines = LineCollection([np.column_stack([xs, y]) for y in ys], linewidths=1.2, alpha=0.8)
    lines.set_cmap(_quality_cmap(goal == "maximize"))
    lines.set_array(values)
    if _is_log_spaced(values, 50):
        lines.set_norm(LogNorm(float(values.min()), float(values.max())))
    ax.add_collection(lines)
    box = {"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.5}
    for x, (_, ticks) in zip(xs, axes, strict=True):
        ax.axvline(x, color="0.3", linewidth=1, zorder=3)
        for y, text in ticks:
            ax.text(x + 0.04, y, text, fontsize="x-small", va="center", zorder=4, bbox=box)
    ax.set_xticks(xs, labels=names)
    ax.set(xlim=(-0.05, len(names) - 0.95), ylim=(-0.05, 1.05), yticks=[])
    ax.tick_params(axis="x", length=0)
    ax.spines[:].set_visible(False)
    fig.colorbar(lines, ax=ax, label=metric)
    return fig


def parallel_coordinates(
    parallel: SweepParallel, *, goal: str, fmt: ImageFormat, width: int, height: int
) -> bytes:
    return render(_parallel_figure(parallel, goal, width, height), fmt)
