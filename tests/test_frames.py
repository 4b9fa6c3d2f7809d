"""Frames: the model's output on a grid through training, from both engines, stored without pickle."""

import io
from dataclasses import dataclass, field

import numpy as np
import pytest

from app.schemas import RunSpec
from app.services import frames
from app.services.frames import Frame
from app.services.runs import ClaimedRun
from tests.test_engine import Recorder
from worker.training.engine import train_vectorized
from worker.training.reference import train_run


@dataclass
class FrameRecorder(Recorder):
    wanted: int = 6
    made: dict[int, list[Frame]] = field(default_factory=dict)

    def frame_epochs(self, epochs: int) -> list[int]:
        return frames.frame_epochs(epochs, self.wanted)

    def frame_done(self, run_id: int, frame: Frame) -> None:
        self.made.setdefault(run_id, []).append(frame)


def spec(**fields: object) -> RunSpec:
    return RunSpec.model_validate({"epochs": 60, "n_samples": 800, "depth": 2, "width": 6, **fields})


def test_frame_epochs_spread_from_the_untrained_model_to_the_last_epoch() -> None:
    assert frames.frame_epochs(100, 5) == [0, 25, 50, 75, 100]
    assert frames.frame_epochs(10, 50) == list(range(11))
    assert frames.frame_epochs(100, 0) == []
    assert len(frames.frame_epochs(10_000, 50)) == 50


def test_a_xor_boundary_is_learnt_and_both_engines_draw_the_same_frames() -> None:
    vectorized = FrameRecorder()
    train_vectorized([ClaimedRun(1, spec(lr=0.03))], vectorized)
    reference = FrameRecorder()
    train_run(1, spec(lr=0.03), reference)
    made, expected = vectorized.made[1], reference.made[1]
    assert [f.epoch for f in made] == [f.epoch for f in expected] == frames.frame_epochs(60, 6)
    for a, b in zip(made, expected, strict=True):
        assert a.bounds == pytest.approx(b.bounds)
        assert a.values.shape == (frames.GRID_2D, frames.GRID_2D)
        np.testing.assert_allclose(a.values, b.values, atol=1e-4)
    # The last frame separates the clusters: P(label 1) is high at (0, 1) and (1, 0), low at the others.
    x_min, x_max, y_min, y_max = made[-1].bounds
    xs = np.linspace(x_min, x_max, frames.GRID_2D)
    ys = np.linspace(y_min, y_max, frames.GRID_2D)

    def probability(x: float, y: float) -> float:
        return float(made[-1].values[np.abs(ys - y).argmin(), np.abs(xs - x).argmin()])

    assert probability(0, 1) > 0.8 and probability(1, 0) > 0.8
    assert probability(0, 0) < 0.2 and probability(1, 1) < 0.2
    assert not np.allclose(made[0].values, made[-1].values, atol=0.1)  # it moved while training


def test_a_member_of_a_bundle_draws_the_frames_it_draws_alone() -> None:
    together = FrameRecorder()
    train_vectorized([ClaimedRun(1, spec(seed=1)), ClaimedRun(2, spec(seed=2, width=3, noise=0.3))], together)
    alone = FrameRecorder()
    train_vectorized([ClaimedRun(2, spec(seed=2, width=3, noise=0.3))], alone)
    for a, b in zip(together.made[2], alone.made[2], strict=True):
        assert a.bounds == pytest.approx(b.bounds)
        np.testing.assert_allclose(a.values, b.values, atol=1e-5)


def test_a_regression_frame_is_the_fitted_curve_over_the_input_range() -> None:
    recorder = FrameRecorder()
    train_vectorized([ClaimedRun(1, spec(dataset="regression_1d", noise=0.1, lr=0.02))], recorder)
    last = recorder.made[1][-1]
    assert last.values.shape == (frames.GRID_1D,) and last.epoch == 60
    predictions = recorder.outcomes[1].predictions
    assert predictions is not None
    inputs = np.array(predictions["inputs"])[:, 0]
    assert last.bounds[0] < inputs.min() and inputs.max() < last.bounds[1]
    curve_x = np.linspace(last.bounds[0], last.bounds[1], frames.GRID_1D)
    on_curve = np.interp(inputs, curve_x, last.values)
    np.testing.assert_allclose(on_curve, predictions["predictions"], atol=0.05)


def test_frames_round_trip_compactly_and_never_unpickle() -> None:
    probabilities = np.random.default_rng(0).random((frames.GRID_2D, frames.GRID_2D)).astype(np.float32)
    data = frames.encode(Frame(3, [0, 1, 0, 1], probabilities), classification=True)
    assert len(data) < frames.GRID_2D**2 + 200  # one byte a point
    np.testing.assert_allclose(frames.decode(data), probabilities, atol=0.5 / 255 + 1e-6)
    curve = np.linspace(-2, 2, frames.GRID_1D, dtype=np.float32)
    data = frames.encode(Frame(3, [-1, 1], curve), classification=False)
    np.testing.assert_allclose(frames.decode(data), curve, rtol=1e-3)
    hostile = io.BytesIO()
    np.save(hostile, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        frames.decode(hostile.getvalue())


def test_frames_are_for_lines_and_planes_only() -> None:
    assert frames.drawable(1) and frames.drawable(2) and not frames.drawable(3)
    with pytest.raises(ValueError, match="1-D and 2-D"):
        frames.grid(np.zeros((5, 3), dtype=np.float32))
