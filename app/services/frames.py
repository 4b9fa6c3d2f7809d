"""Frames: a model's output on a grid over its input range, kept at chosen epochs of training.

The worker makes them (the grid and the epochs are chosen here, so that both engines agree) and the API
reads them back for the decision-boundary plot, its animation and a regression's fitted curve.
"""

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import RunFrame

GRID_2D = 32  # points per side: coarse, but bilinear shading makes it look smooth
GRID_1D = 200
MARGIN = 0.1  # of the data's range, on each side


@dataclass(frozen=True)
class Frame:
    epoch: int
    bounds: list[float]  # [x_min, x_max] or [x_min, x_max, y_min, y_max]
    values: npt.NDArray[np.float32]  # [n] for 1-D inputs, [ny, nx] for 2-D (row 0 at y_min)

    @classmethod
    def on_grid(cls, epoch: int, bounds: list[float], outputs: npt.NDArray[np.float32]) -> "Frame":
        """A frame from the model's outputs at the points of `grid`, in their order."""
        values = outputs.reshape(GRID_2D, GRID_2D) if len(bounds) == 4 else outputs
        return cls(epoch, bounds, values)


def frame_epochs(epochs: int, frames: int) -> list[int]:
    """`frames` epochs spread evenly from 0 (the untrained model) to the last epoch."""
    if frames <= 0:
        return []
    return sorted({int(e) for e in np.rint(np.linspace(0, epochs, min(frames, epochs + 1)))})


def drawable(input_dim: int) -> bool:
    """Frames cover the input space: a line or a plane."""
    return input_dim <= 2


def grid(train_x: npt.NDArray[np.float32]) -> tuple[list[float], npt.NDArray[np.float32]]:
    """The box around the training inputs (plus a margin) and the grid's points in it, [G, input_dim]."""
    if not drawable(train_x.shape[1]):
        raise ValueError(f"frames cover 1-D and 2-D inputs, not {train_x.shape[1]}-D")
    low, high = train_x.min(axis=0), train_x.max(axis=0)
    pad = MARGIN * np.maximum(high - low, 1e-6)
    low, high = low - pad, high + pad
    if train_x.shape[1] == 1:
        points = np.linspace(low[0], high[0], GRID_1D)[:, None]
        return [float(low[0]), float(high[0])], points.astype(np.float32)
    xs = np.linspace(low[0], high[0], GRID_2D)
    ys = np.linspace(low[1], high[1], GRID_2D)
    mesh_x, mesh_y = np.meshgrid(xs, ys)  # row-major: row i is y = ys[i]
    points = np.stack([mesh_x.ravel(), mesh_y.ravel()], axis=1)
    return [float(low[0]), float(high[0]), float(low[1]), float(high[1])], points.astype(np.float32)


def encode(frame: Frame, *, classification: bool) -> bytes:
    """A frame's values as .npy bytes: probabilities in steps of 1/255, regression outputs in float16."""
    if classification:
        array: npt.NDArray[Any] = np.rint(np.clip(frame.values, 0, 1) * 255).astype(np.uint8)
    else:
        array = frame.values.astype(np.float16)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def decode(data: bytes) -> npt.NDArray[np.float32]:
    array: npt.NDArray[Any] = np.load(io.BytesIO(data), allow_pickle=False)
    values = array.astype(np.float32)
    return values / np.float32(255) if array.dtype == np.uint8 else values


def record_frames(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert frames: a resumed run that replays an epoch overwrites that epoch's frame."""
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(RunFrame)
    statement = statement.on_conflict_do_update(
        index_elements=[RunFrame.run_id, RunFrame.epoch],
        set_={"bounds": statement.excluded.bounds, "data": statement.excluded.data},
    )
    session.execute(statement, list(rows))


def load_frames(*, session: Session, run_id: int, epochs: Iterable[int] | None = None) -> list[Frame]:
    """The run's frames in epoch order (only these epochs when given)."""
    query = select(RunFrame.epoch, RunFrame.bounds, RunFrame.data).where(RunFrame.run_id == run_id)
    if epochs is not None:
        query = query.where(RunFrame.epoch.in_(list(epochs)))
    rows = session.execute(query.order_by(RunFrame.epoch)).all()
    return [Frame(row.epoch, list(row.bounds), decode(row.data)) for row in rows]


def last_frame(*, session: Session, run_id: int) -> Frame | None:
    epoch = session.scalar(
        select(RunFrame.epoch).where(RunFrame.run_id == run_id).order_by(RunFrame.epoch.desc()).limit(1)
    )
    if epoch is None:
        return None
    return load_frames(session=session, run_id=run_id, epochs=[epoch])[0]
