"""Figures: exact pixel sizes, valid PNG / SVG / GIF, and what each figure shows in its edge cases."""

import io
import math
import struct
import warnings
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import GifImagePlugin, Image, ImageChops

from app.schemas import (
    ParallelRow,
    ParameterImportance,
    SummaryMetric,
    SweepImportance,
    SweepParallel,
    SweepTable,
    TableCell,
)
from app.services import plots
from app.services.plots import ImageFormat

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RNG_SEED = 7


def history(epochs: int = 40, *, accuracy: bool = True) -> dict[str, list[float | None]]:
    rng = np.random.default_rng(RNG_SEED)
    train = 0.7 * np.exp(-np.arange(epochs) / 6) + 0.001 + rng.uniform(0, 0.001, epochs)
    val = train + 0.01
    return {
        "epoch": list(range(1, epochs + 1)),
        "train_loss": [float(v) for v in train],
        "val_loss": [float(v) for v in val],
        "best_val_loss": [float(v) for v in np.minimum.accumulate(val)],
        "val_accuracy": [float(1 - v) if accuracy else None for v in val],
    }


def xor_points(n: int = 120) -> tuple[list[list[float]], list[float]]:
    rng = np.random.default_rng(RNG_SEED)
    centres = rng.integers(0, 2, (n, 2))
    points = centres + rng.normal(0, 0.15, (n, 2))
    return points.tolist(), [float(a ^ b) for a, b in centres]


BOUNDS = [-0.5, 1.5, -0.5, 1.5]


def xor_grid(sharpness: float, nx: int = 30, ny: int = 25) -> np.ndarray:
    gx, gy = np.meshgrid(np.linspace(-0.5, 1.5, nx), np.linspace(-0.5, 1.5, ny))
    return 1 / (1 + np.exp(sharpness * (gx - 0.5) * (gy - 0.5)))


def sweep_table(*, cols: bool = True, averaged_over: list[str] | None = None) -> SweepTable:
    col_values = [1, 2, 3] if cols else [None]
    cells = [
        TableCell(
            row=depth, col=width, mean=0.3 / (1 + depth * (width or 1)), std=0.01 if depth else None, n=5
        )
        for depth in (0, 1, 2)
        for width in col_values
        if (depth, width) != (2, 3)
    ]
    return SweepTable(
        sweep_id=1,
        metric=SummaryMetric.test_loss,
        rows="depth",
        cols="width" if cols else None,
        row_values=[0, 1, 2],
        col_values=[1, 2, 3] if cols else [],
        averaged_over=averaged_over or [],
        cells=cells,
    )


def sweep_importance(parameters: list[ParameterImportance] | None = None) -> SweepImportance:
    if parameters is None:
        parameters = [
            ParameterImportance(name="width", importance=0.2, correlation=-0.62),
            ParameterImportance(name="depth", importance=0.7, correlation=0.3),
            ParameterImportance(name="activation", importance=0.1, correlation=None),
        ]
    return SweepImportance(
        sweep_id=1,
        metric=SummaryMetric.test_loss,
        goal="minimize",
        evaluator="fanova",
        n_runs=40,
        parameters=parameters,
    )


def sweep_parallel(n: int = 30, *, none_at: int | None = 3) -> SweepParallel:
    rng = np.random.default_rng(RNG_SEED)
    rows = []
    for i in range(n):
        params: dict[str, Any] = {
            "depth": int(rng.integers(0, 4)),
            "lr": float(10 ** rng.uniform(-4, -1)),
            "activation": str(rng.choice(["tanh", "relu", "gelu"])),
            "shuffle": bool(i % 2),
        }
        value = None if i == none_at else float(0.05 + 0.1 * params["depth"] + rng.random() * 0.05)
        rows.append(ParallelRow(run_id=i + 1, params=params, value=value))
    return SweepParallel(
        sweep_id=1,
        metric=SummaryMetric.test_loss,
        parameters=["depth", "lr", "activation", "shuffle"],
        data=rows,
    )


Renderer = Callable[[ImageFormat, int, int], bytes]
POINTS, LABELS = xor_points()
RENDERERS: dict[str, Renderer] = {
    "loss_curves": lambda fmt, w, h: plots.loss_curves(
        history(), best_epoch=30, title="run 1", fmt=fmt, width=w, height=h
    ),
    "overlaid_curves": lambda fmt, w, h: plots.overlaid_curves(
        [("run 1", [1, 2, 3], [0.5, 0.3, 0.2]), ("run 2", [1, 2, 3], [0.6, None, 0.25])],
        metric="val_loss",
        title="sweep 1",
        fmt=fmt,
        width=w,
        height=h,
    ),
    "regression_fit": lambda fmt, w, h: plots.regression_fit(
        inputs=[-1.0, 0.0, 1.0],
        targets=[-1.1, 0.1, 0.9],
        predictions=[-1.0, 0.0, 1.0],
        fit_x=None,
        fit_y=None,
        title="run 2",
        fmt=fmt,
        width=w,
        height=h,
    ),
    "classification_predictions": lambda fmt, w, h: plots.classification_predictions(
        inputs=POINTS, targets=LABELS, probabilities=LABELS, title="run 3", fmt=fmt, width=w, height=h
    ),
    "decision_boundary": lambda fmt, w, h: plots.decision_boundary(
        bounds=BOUNDS,
        probabilities=xor_grid(10),
        points=POINTS,
        labels=LABELS,
        epoch=7,
        title="run 3",
        fmt=fmt,
        width=w,
        height=h,
    ),
    "heatmap": lambda fmt, w, h: plots.heatmap(sweep_table(), fmt=fmt, width=w, height=h),
    "importance_bars": lambda fmt, w, h: plots.importance_bars(
        sweep_importance(), fmt=fmt, width=w, height=h
    ),
    "parallel_coordinates": lambda fmt, w, h: plots.parallel_coordinates(
        sweep_parallel(), goal="minimize", fmt=fmt, width=w, height=h
    ),
}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.findobj(Text)]


@pytest.mark.parametrize("name", sorted(RENDERERS))
@pytest.mark.parametrize("size", [(640, 480), (333, 257)])
def test_png_has_exactly_the_requested_size(name: str, size: tuple[int, int]) -> None:
    assert png_size(RENDERERS[name]("png", *size)) == size


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_svg_parses(name: str) -> None:
    root = ElementTree.fromstring(RENDERERS[name]("svg", 500, 400))
    assert root.tag.endswith("svg")


def test_media_types_cover_every_format() -> None:
    assert plots.MEDIA_TYPES == {"png": "image/png", "svg": "image/svg+xml", "gif": "image/gif"}


def test_rendering_warns_of_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for render in RENDERERS.values():
            assert render("png", 400, 300)[:8] == PNG_SIGNATURE


def test_loss_curves_with_accuracy_have_a_second_axis_and_one_legend() -> None:
    fig = plots._loss_figure(history(), 30, "run 1", 640, 480)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_ylim() == (0, 1)
    legends = [legend for legend in (ax.get_legend() for ax in fig.axes) if legend is not None]
    assert len(legends) == 1
    labels = [text.get_text() for text in legends[0].get_texts()]
    assert labels == ["train loss", "validation loss", "best epoch 30", "validation accuracy"]


def test_loss_curves_of_a_regression_run_have_one_axis() -> None:
    fig = plots._loss_figure(history(accuracy=False), None, "run 2", 640, 480)
    assert len(fig.axes) == 1
    assert png_size(plots.render(fig, "png")) == (640, 480)


def test_loss_curves_go_log_only_when_the_losses_span_a_wide_range() -> None:
    assert plots._loss_figure(history(), None, "wide", 640, 480).axes[0].get_yscale() == "log"
    narrow: dict[str, Sequence[float | None]] = {
        "epoch": [1, 2, 3],
        "train_loss": [0.5, 0.4, 0.3],
        "val_loss": [0.55, 0.45, 0.35],
    }
    assert plots._loss_figure(narrow, None, "narrow", 640, 480).axes[0].get_yscale() == "linear"


def test_loss_curves_take_none_nan_and_missing_columns() -> None:
    gappy: dict[str, Sequence[float | None]] = {
        "epoch": [1, 2, 3, 4],
        "val_loss": [0.5, None, math.nan, 0.2],
        "val_accuracy": [None, 0.5, None, 0.7],
    }
    fig = plots._loss_figure(gappy, 4, "gappy", 480, 360)
    assert len(fig.axes) == 2
    assert png_size(plots.render(fig, "png")) == (480, 360)
    assert "no epochs recorded yet" in texts(plots._loss_figure({}, None, "empty", 480, 360))


def test_overlaid_curves_put_a_long_legend_outside() -> None:
    series = [(f"run {i}", [1, 2, 3], [0.5 + i, 0.3 + i, None]) for i in range(12)]
    fig = plots._overlaid_figure(series, "val_loss", "sweep 1", 640, 480)
    assert fig.axes[0].get_legend() is None
    assert len(fig.legends) == 1
    colours = {tuple(line.get_color()) for line in fig.axes[0].get_lines()}
    assert len(colours) == 12
    few = plots._overlaid_figure(series[:3], "val_loss", "sweep 1", 640, 480)
    assert few.axes[0].get_legend() is not None and not few.legends


def test_regression_fit_reports_the_test_mse() -> None:
    svg = RENDERERS["regression_fit"]("svg", 800, 400).decode()
    # matplotlib writes each text it draws as paths into a comment as well.
    assert "test MSE 0.01" in svg
    assert "x (standardised)" in svg and "Fit over the input range" in svg


def test_regression_fit_draws_the_given_curve() -> None:
    common = {"inputs": [-1.0, 1.0, 0.0], "targets": [-1.0, 1.0, 0.0], "predictions": [-0.9, 0.9, 0.1]}
    sorted_predictions = plots.regression_fit(
        **common, fit_x=None, fit_y=None, title="t", fmt="png", width=600, height=300
    )
    curve = plots.regression_fit(
        **common, fit_x=[-2.0, 0.0, 2.0], fit_y=[2.0, 0.0, 2.0], title="t", fmt="png", width=600, height=300
    )
    assert sorted_predictions != curve


def test_classification_predictions_report_accuracy_and_misclassified_points() -> None:
    svg = plots.classification_predictions(
        inputs=[[0, 0], [1, 1], [0, 1], [1, 0]],
        targets=[0, 0, 1, 1],
        probabilities=[0.1, 0.2, 0.9, 0.4],
        title="run 3",
        fmt="svg",
        width=500,
        height=400,
    ).decode()
    assert "test accuracy 75.0%" in svg
    assert "misclassified (1)" in svg


def test_classification_predictions_need_two_dimensional_inputs() -> None:
    with pytest.raises(ValueError, match="2-D"):
        plots.classification_predictions(
            inputs=[[0, 0, 0]], targets=[0], probabilities=[0.2], title="t", fmt="png", width=300, height=300
        )


def test_decision_boundary_draws_the_half_contour_legend_and_colour_bar() -> None:
    fig, ax, image, contour = plots._boundary_figure(
        BOUNDS, xor_grid(10), POINTS, LABELS, 7, "run 3", 480, 400
    )
    assert contour is not None
    assert "epoch 7" in ax.get_title()
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["p = 0.5", "label 0", "label 1"]
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "P(label 1)"
    # The grid's 30 columns span the bounds at their centres: half a cell of 2/29 beyond each end.
    assert image.get_extent()[0] == pytest.approx(-0.5 - 1 / 29)
    assert ax.get_xlim() == (-0.5, 1.5)


def test_decision_boundary_without_a_crossing_draws_no_contour_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, ax, _, contour = plots._boundary_figure(
            BOUNDS, np.full((5, 5), 0.9), POINTS, LABELS, None, "sure", 300, 300
        )
    assert contour is None
    assert ax.get_title() == "sure"


def test_boundary_animation_is_a_gif_with_one_frame_per_epoch() -> None:
    frames = [(epoch, xor_grid(epoch)) for epoch in range(1, 13)]
    data = plots.boundary_animation(
        bounds=BOUNDS, frames=frames, points=POINTS, labels=LABELS, title="run 3", width=480, height=400
    )
    with Image.open(io.BytesIO(data)) as gif:
        assert isinstance(gif, GifImagePlugin.GifImageFile)
        assert gif.n_frames == len(frames)
        assert gif.size == (480, 400)
        first = gif.convert("RGB")
        assert gif.info["duration"] == 120
        gif.seek(gif.n_frames - 1)
        last = gif.convert("RGB")
        assert gif.info["duration"] == plots.LAST_FRAME_MS
    assert ImageChops.difference(first, last).getbbox() is not None


def test_boundary_animation_frames_match_the_still_figure() -> None:
    # The animation redraws only part of each frame; what it shows must still be the whole figure.
    grid = xor_grid(10)
    still = plots.decision_boundary(
        bounds=BOUNDS,
        probabilities=grid,
        points=POINTS,
        labels=LABELS,
        epoch=5,
        title="t",
        fmt="png",
        width=400,
        height=320,
    )
    animation = plots.boundary_animation(
        bounds=BOUNDS, frames=[(5, grid)], points=POINTS, labels=LABELS, title="t", width=400, height=320
    )
    with Image.open(io.BytesIO(still)) as a, Image.open(io.BytesIO(animation)) as b:
        difference = np.abs(np.asarray(a.convert("RGB"), dtype=int) - np.asarray(b.convert("RGB"), dtype=int))
    # Quantising to the GIF's palette moves each colour a little (here by 28 at most); a point, a line or
    # a letter missing or misplaced moves some pixels by far more.
    assert difference.max() < 48


def test_boundary_animation_titles_each_frame_with_its_epoch() -> None:
    # Two frames with one grid differ only in their titles; Pillow would merge them into one if they did not.
    grid = xor_grid(10)
    data = plots.boundary_animation(
        bounds=BOUNDS,
        frames=[(1, grid), (2, grid)],
        points=POINTS,
        labels=LABELS,
        title="t",
        width=300,
        height=240,
    )
    with Image.open(io.BytesIO(data)) as gif:
        assert isinstance(gif, GifImagePlugin.GifImageFile)
        assert gif.n_frames == 2


def test_boundary_animation_needs_a_frame() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        plots.boundary_animation(
            bounds=BOUNDS, frames=[], points=POINTS, labels=LABELS, title="t", width=300, height=300
        )


def test_heatmap_leaves_a_missing_cell_blank_and_notes_missing_std() -> None:
    fig = plots._heatmap_figure(sweep_table(averaged_over=["lr"]), 640, 480)
    ax = fig.axes[0]
    means = ax.get_images()[0].get_array()
    assert means is not None and means.shape == (3, 3)
    missing = np.isnan(np.ma.filled(means, np.nan))
    assert int(missing.sum()) == 1 and bool(missing[2, 2])
    shown = texts(fig)
    assert "0.3\n± –" in shown and "n=5" in shown
    assert ax.get_title() == "test_loss: mean ± std over seeds\n(averaged over: lr)"
    assert fig.axes[1].get_ylabel() == "test_loss"


@pytest.mark.parametrize(
    ("metric", "better"), [(SummaryMetric.test_loss, min), (SummaryMetric.test_accuracy, max)]
)
def test_heatmap_shows_the_better_end_darker(metric: SummaryMetric, better: Callable[..., float]) -> None:
    table = sweep_table().model_copy(update={"metric": metric})
    image = plots._heatmap_figure(table, 400, 300).axes[0].get_images()[0]
    means = [cell.mean for cell in table.cells]

    def luminance(value: float) -> float:
        red, green, blue, _ = image.cmap(image.norm(np.array(value)))
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    worse = min if better is max else max
    assert luminance(better(means)) < luminance(worse(means))


def test_heatmap_without_cols_has_one_column() -> None:
    fig = plots._heatmap_figure(sweep_table(cols=False), 400, 400)
    means = fig.axes[0].get_images()[0].get_array()
    assert means is not None and means.shape == (3, 1)
    assert fig.axes[0].get_title() == "test_loss: mean ± std over seeds"


def test_heatmap_without_cells_says_so() -> None:
    empty = sweep_table().model_copy(update={"cells": [], "row_values": [], "col_values": []})
    assert "no finished runs yet" in texts(plots._heatmap_figure(empty, 400, 300))


def test_importance_bars_put_the_most_important_on_top_with_correlations() -> None:
    fig = plots._importance_figure(sweep_importance(), 640, 480)
    ax = fig.axes[0]
    top_to_bottom = sorted(ax.get_yticklabels(), key=lambda label: label.get_position()[1])
    assert ax.yaxis_inverted()
    assert [label.get_text() for label in top_to_bottom] == ["depth", "width", "activation"]
    assert {"r = 0.30", "r = -0.62", "r = n/a"} <= set(texts(fig))
    assert "fanova" in ax.get_title() and "40 runs" in ax.get_title()


def test_importance_bars_without_parameters_say_so() -> None:
    fig = plots._importance_figure(sweep_importance([]), 400, 300)
    assert "no varying parameters" in texts(fig)
    assert png_size(plots.render(fig, "png")) == (400, 300)


def test_parallel_coordinates_skip_runs_without_a_value_and_draw_the_best_last() -> None:
    parallel = sweep_parallel()
    for goal, best in (("minimize", min), ("maximize", max)):
        fig = plots._parallel_figure(parallel, goal, 800, 400)
        (lines,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
        values = np.asarray(lines.get_array())
        assert len(lines.get_paths()) == len(parallel.data) - 1
        assert values[-1] == best(row.value for row in parallel.data if row.value is not None)
        assert "1 without a value left out" in fig.axes[0].get_title()


def test_parallel_coordinates_label_categorical_and_log_axes() -> None:
    shown = texts(plots._parallel_figure(sweep_parallel(), "minimize", 800, 400))
    assert {"gelu", "relu", "tanh", "False", "True"} <= set(shown)
    assert {"0.001", "0.01"} <= set(shown)  # lr spans three decades: ticks at the decades
    assert {"0", "1", "2", "3"} <= set(shown)  # depth is an integer: no ticks between its values


def test_parallel_coordinates_without_runs_say_so() -> None:
    empty = sweep_parallel(n=1, none_at=0)
    fig = plots._parallel_figure(empty, "minimize", 400, 300)
    assert "no finished runs yet" in texts(fig)
    assert png_size(plots.render(fig, "png")) == (400, 300)


def test_parallel_coordinates_reject_an_unknown_goal() -> None:
    with pytest.raises(ValueError, match="goal"):
        plots.parallel_coordinates(sweep_parallel(), goal="best", fmt="png", width=400, height=300)
