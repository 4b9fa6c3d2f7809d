"""What the Server-Sent Events streams read: a run's new epochs and status, a sweep's run transitions.

The database is the only source: a stream polls it, so events work the same on SQLite and on PostgreSQL,
whichever broker carries the work, and a client that reconnects with Last-Event-ID gets what it missed.

A run's event ids are epoch numbers: the last one a client saw says which epochs it has. A sweep's are
cursors over its runs' transitions (a run started at started_at, ended at finished_at), ordered by time,
run id and kind. Timestamps come from several processes whose commits may land out of order, so each read
looks back LOOKBACK before the cursor and drops what the stream already sent: a transition may reach a
reconnecting client twice, and is missed only if its commit came more than LOOKBACK after its timestamp
(or the clocks of the machines differ by more).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.core.db import Reader
from app.models import EpochMetric, Run, RunStatus
from app.schemas import MetricKey
from app.services import run_views, sweeps

TERMINAL = frozenset(
    {RunStatus.succeeded.value, RunStatus.failed.value, RunStatus.cancelled.value, RunStatus.pruned.value}
)
EPOCHS_PER_READ = 1000
# Longer than a claim can wait for SQLite's write lock between taking its timestamp and committing.
LOOKBACK = timedelta(seconds=60)
STARTED, ENDED = 0, 1


def sse(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One Server-Sent Event; data is one line of JSON (orjson never writes raw newlines)."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


def run_state(*, session: Reader, run_id: int) -> dict[str, Any]:
    """The run as GET /runs/{id} answers it; NotFound if there is no such run."""
    return run_views.run_view(session=session, run_id=run_id)


def settled(view: dict[str, Any]) -> bool:
    """Whether an ended run is written whole. A cancel or the pruner sets the status first, and the
    worker writes the last epochs and the summary a moment later; a run that never started has none."""
    return view["status"] in TERMINAL and (view["summary"] is not None or view["worker"] is None)


def epochs_after(*, session: Session, run_id: int, epoch: int) -> list[dict[str, Any]]:
    columns = [getattr(EpochMetric, key.value) for key in MetricKey]
    rows = session.execute(
        select(EpochMetric.epoch, *columns)
        .where(EpochMetric.run_id == run_id, EpochMetric.epoch > epoch)
        .order_by(EpochMetric.epoch)
        .limit(EPOCHS_PER_READ)
    ).all()
    keys = ["epoch", *(key.value for key in MetricKey)]
    return [{"run_id": run_id, **dict(zip(keys, row, strict=True))} for row in rows]


@dataclass(frozen=True, order=True)
class Transition:
    at: datetime
    run_id: int
    kind: int  # STARTED or ENDED
    status: str
    epoch: int
    epochs: int

    @property
    def key(self) -> tuple[int, int, datetime]:
        return (self.run_id, self.kind, self.at)

    @property
    def cursor(self) -> str:
        return f"{int(self.at.timestamp() * 1_000_000)}-{self.run_id}-{self.kind}"

    def data(self) -> bytes:
        status = RunStatus.running.value if self.kind == STARTED else self.status
        progress = {"epoch": self.epoch, "epochs": self.epochs}
        return orjson.dumps({"run_id": self.run_id, "status": status, "progress": progress})


def parse_cursor(value: str | None) -> datetime | None:
    """The time of a sweep stream's Last-Event-ID; None (from the start) when absent or unreadable."""
    try:
        micros = int((value or "").split("-", 1)[0])
        return datetime.fromtimestamp(micros / 1_000_000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def sweep_transitions(*, session: Session, sweep_id: int, since: datetime | None) -> list[Transition]:
    """Transitions of the sweep's runs at or after `since` minus the look-back, in order."""
    query = select(Run.id, Run.status, Run.started_at, Run.finished_at, Run.progress_epoch, Run.epochs).where(
        Run.sweep_id == sweep_id
    )
    if since is not None:
        start = since - LOOKBACK
        query = query.where(or_(Run.started_at >= start, Run.finished_at >= start))
    transitions = []
    for row in session.execute(query):
        times = ((row.started_at, STARTED), (row.finished_at, ENDED))
        for at, kind in times:
            if at is not None and (since is None or at >= since - LOOKBACK):
                transitions.append(Transition(at, row.id, kind, row.status, row.progress_epoch, row.epochs))
    return sorted(transitions)


def sweep_state(*, session: Session, sweep_id: int) -> tuple[str, bytes]:
    """The sweep's status and its JSON as GET /sweeps/{id} answers it; NotFound if there is no such sweep."""
    public = sweeps.read_sweep(session=session, sweep_id=sweep_id)
    return public.status, public.model_dump_json().encode()
