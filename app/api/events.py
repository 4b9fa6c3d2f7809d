"""Server-Sent Events: a run's epochs and status changes, a sweep's run transitions and counts, live.

Each stream polls the database (SWEEPYARD_EVENTS_POLL_INTERVAL_S) from an async generator, running its
queries on the thread pool, so an open stream holds neither a thread nor a connection between polls.
"""

import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import anyio
import orjson
from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from app.api.deps import RunId, SweepId
from app.core.config import get_settings
from app.core.db import session_scope
from app.services import events
from app.services.events import TERMINAL, sse

router = APIRouter(tags=["events"])
T = TypeVar("T")
KEEP_ALIVE_S = 15.0
# How long a stream waits, once a run is cancelled or pruned, for its worker's last epochs and summary.
SETTLE_S = 10.0
LAST_EPOCH = re.compile(r"\d{1,9}")
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RUN_EVENTS_DOC = """Server-Sent Events, `text/event-stream`:

- `event: run`, data the run as GET /runs/{id} returns it: first, then at every status change;
- `event: epoch`, data `{"run_id", "epoch", "train_loss", "val_loss", "best_val_loss", "val_accuracy"}`,
  `id` the epoch.

The stream ends after the `run` event of a finished run. Reconnect with `Last-Event-ID` to get only later
epochs. `curl -N http://127.0.0.1:8000/api/v1/runs/1/events`"""
SWEEP_EVENTS_DOC = """Server-Sent Events, `text/event-stream`:

- `event: sweep`, data the sweep as GET /sweeps/{id} returns it (status, counts, best run): first, then
  after every batch of changes;
- `event: run`, data `{"run_id", "status", "progress": {"epoch", "epochs"}}`: a run started or ended.

The stream ends after a `sweep` event whose status is not `running`. Reconnect with `Last-Event-ID` to
get what happened since."""
LastEventId = Annotated[str | None, Header(description="The id of the last event received, to resume.")]
EVENT_STREAM: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}}}


def _read(work: Callable[..., T], **kwargs: Any) -> T:
    with session_scope(read_only=True) as session:
        return work(session=session, **kwargs)


async def _in_thread(work: Callable[..., T], **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: _read(work, **kwargs))


class KeepAlive:
    """A comment line after a quiet spell, so that proxies and clients keep an idle stream open."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def sent(self, event: bytes) -> bytes:
        self.last = time.monotonic()
        return event

    def due(self) -> bool:
        return time.monotonic() - self.last > KEEP_ALIVE_S


def _stream(events_: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events_, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={**EVENT_STREAM, 404: {"description": "No run has this id."}},
    description=RUN_EVENTS_DOC,
)
async def run_events(run_id: RunId, last_event_id: LastEventId = None) -> StreamingResponse:
    """Follow a run live: its epochs and status changes."""
    view = await _in_thread(events.run_state, run_id=run_id)  # a 404 before the stream starts
    sent = int(last_event_id) if last_event_id and LAST_EPOCH.fullmatch(last_event_id) else 0
    poll_s = get_settings().events_poll_interval_s

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        announced = view["status"]
        yield sse("run", orjson.dumps(view), str(sent))
        keep_alive = KeepAlive()
        ended_at: float | None = None
        while True:
            # Status before epochs: a run's last epochs are written before its outcome, so once the
            # outcome is read the epochs read after it are complete.
            now = await _in_thread(events.run_state, run_id=run_id)
            rows = await _in_thread(events.epochs_after, run_id=run_id, epoch=sent)
            for row in rows:
                sent = row["epoch"]
                yield keep_alive.sent(sse("epoch", orjson.dumps(row), str(sent)))
            if len(rows) == events.EPOCHS_PER_READ:
                continue  # more are waiting
            if now["status"] in TERMINAL:
                ended_at = ended_at or time.monotonic()
                if events.settled(now) or time.monotonic() - ended_at > SETTLE_S:
                    yield sse("run", orjson.dumps(now), str(sent))
                    return
            elif now["status"] != announced:
                announced = now["status"]
                yield keep_alive.sent(sse("run", orjson.dumps(now), str(sent)))
            if keep_alive.due():
                yield keep_alive.sent(b": keep-alive\n\n")
            await anyio.sleep(poll_s)

    return _stream(stream())


@router.get(
    "/sweeps/{sweep_id}/events",
    response_class=StreamingResponse,
    responses={**EVENT_STREAM, 404: {"description": "No sweep has this id."}},
    description=SWEEP_EVENTS_DOC,
)
async def sweep_events(sweep_id: SweepId, last_event_id: LastEventId = None) -> StreamingResponse:
    """Follow a sweep live: its runs starting and ending, and its counts."""
    status, view = await _in_thread(events.sweep_state, sweep_id=sweep_id)  # a 404 before the stream
    since = events.parse_cursor(last_event_id)
    cursor = last_event_id if since is not None and last_event_id else "0"
    poll_s = get_settings().events_poll_interval_s

    async def stream() -> AsyncIterator[bytes]:
        nonlocal since, cursor
        yield sse("sweep", view, cursor)
        keep_alive = KeepAlive()
        sent: set[tuple[int, int, datetime]] = set()  # transitions within the look-back already sent
        while True:
            transitions = await _in_thread(events.sweep_transitions, sweep_id=sweep_id, since=since)
            now_status, now_view = await _in_thread(events.sweep_state, sweep_id=sweep_id)
            if now_status != "running":  # ended: what ended it is surely committed now
                transitions = await _in_thread(events.sweep_transitions, sweep_id=sweep_id, since=since)
            new = [t for t in transitions if t.key not in sent]
            for transition in new:
                sent.add(transition.key)
                cursor = transition.cursor
                yield keep_alive.sent(sse("run", transition.data(), cursor))
            if new:
                since = max(since or new[-1].at, new[-1].at)
                sent = {key for key in sent if key[2] >= since - events.LOOKBACK}
            if new or now_status != "running":
                yield keep_alive.sent(sse("sweep", now_view, cursor))
                if now_status != "running":
                    return
            if keep_alive.due():
                yield keep_alive.sent(b": keep-alive\n\n")
            await anyio.sleep(poll_s)

    return _stream(stream())
