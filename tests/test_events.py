"""Server-Sent Events against real processes: a run's every epoch in order, resuming after a dropped
connection, a sweep's transitions, and the delay from a worker's write to the event."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.client import parse_sse
from app.core import migrate as migrations
from app.core.db import session_scope
from app.schemas import RunSpec
from app.services import runs as run_service
from tests.test_end_to_end import SWEEPYARD, embedded_env, free_port, sweepyard_up

pytestmark = pytest.mark.e2e


@dataclass
class Event:
    event: str
    id: str | None
    data: dict[str, Any]


def events(
    client: httpx.Client, path: str, last_event_id: str | None = None, stop_after: int | None = None
) -> list[Event]:
    """Read a stream until the server ends it (or until `stop_after` events, then hang up)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    got: list[Event] = []
    with client.stream("GET", path, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for sse in parse_sse(response.iter_lines()):
            got.append(Event(sse.event, sse.id, sse.json()))
            if stop_after is not None and len(got) >= stop_after:
                break
    return got


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp_path = tmp_path_factory.mktemp("events")
    with sweepyard_up(embedded_env(tmp_path), tmp_path / "up.log") as (client, _):
        yield client


def epochs_of(stream: list[Event]) -> list[int]:
    return [e.data["epoch"] for e in stream if e.event == "epoch"]


def test_a_run_stream_delivers_every_epoch_in_order_then_ends(live: httpx.Client) -> None:
    run_id = live.post("/api/v1/runs", json={"epochs": 150}).json()["id"]
    stream = events(live, f"/api/v1/runs/{run_id}/events")
    assert stream[0].event == "run" and stream[0].data["id"] == run_id
    assert stream[-1].event == "run" and stream[-1].data["status"] == "succeeded"
    assert epochs_of(stream) == list(range(1, 151))
    assert [e.id for e in stream if e.event == "epoch"] == [str(n) for n in range(1, 151)]
    history = live.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert [e.data["val_loss"] for e in stream if e.event == "epoch"] == history["val_loss"]
    assert stream[-1].data == live.get(f"/api/v1/runs/{run_id}").json()
    # A client that comes after the end gets the whole history and the end at once.
    again = events(live, f"/api/v1/runs/{run_id}/events")
    assert epochs_of(again) == list(range(1, 151)) and again[-1].data["status"] == "succeeded"


def test_a_client_that_reconnects_with_last_event_id_misses_nothing(live: httpx.Client) -> None:
    run_id = live.post("/api/v1/runs", json={"epochs": 400, "n_samples": 3000}).json()["id"]
    first = events(live, f"/api/v1/runs/{run_id}/events", stop_after=8)
    seen = epochs_of(first)
    assert seen, "the first connection saw no epoch"
    rest = events(live, f"/api/v1/runs/{run_id}/events", last_event_id=first[-1].id)
    assert rest[0].event == "run"
    assert seen + epochs_of(rest) == list(range(1, 401))
    assert rest[-1].data["status"] == "succeeded"


def test_a_cancelled_run_ends_its_stream_with_its_last_epochs_and_summary(live: httpx.Client) -> None:
    run_id = live.post("/api/v1/runs", json={"epochs": 5000, "n_samples": 4000}).json()["id"]
    got: list[Event] = []
    with live.stream("GET", f"/api/v1/runs/{run_id}/events", timeout=60) as response:
        for sse in parse_sse(response.iter_lines()):
            got.append(Event(sse.event, sse.id, sse.json()))
            if sse.event == "epoch" and sse.json()["epoch"] == 3:
                assert live.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    final = got[-1]
    assert final.event == "run" and final.data["status"] == "cancelled"
    # The worker writes the summary and its last epochs after the status: the stream waited for them.
    assert final.data["summary"] is not None
    assert epochs_of(got) == live.get(f"/api/v1/runs/{run_id}/metrics").json()["epoch"]
    assert final.data["summary"]["best_val_loss"] is not None


SWEEP = {
    "method": "grid",
    "parameters": {"depth": {"values": [0, 1]}, "width": {"values": [2, 3]}},
    "base": {"epochs": 30, "n_samples": 400},
    "repeats": 2,
}


def test_a_sweep_stream_reports_each_run_and_the_counts_until_the_sweep_ends(live: httpx.Client) -> None:
    sweep_id = live.post("/api/v1/sweeps", json=SWEEP).json()["id"]
    first = events(live, f"/api/v1/sweeps/{sweep_id}/events", stop_after=3)
    rest = events(live, f"/api/v1/sweeps/{sweep_id}/events", last_event_id=first[-1].id)
    stream = first + rest
    assert stream[0].event == "sweep" and stream[0].data["id"] == sweep_id
    final = rest[-1]
    assert final.event == "sweep" and final.data["status"] == "finished"
    assert final.data["counts"]["succeeded"] == final.data["counts"]["total"] == 8
    ended = {e.data["run_id"] for e in stream if e.event == "run" and e.data["status"] == "succeeded"}
    runs = live.get("/api/v1/runs", params={"sweep_id": sweep_id}).json()["data"]
    assert ended == {run["id"] for run in runs}
    assert final.data == live.get(f"/api/v1/sweeps/{sweep_id}").json()


def test_streams_of_unknown_runs_and_sweeps_are_404(live: httpx.Client) -> None:
    assert live.get("/api/v1/runs/999999/events").status_code == 404
    assert live.get("/api/v1/sweeps/999999/events").status_code == 404
    assert live.get("/api/v1/runs/0/events").status_code == 422
    # A Last-Event-ID that is not a small number means "from the start", never a 500.
    run_id = live.post("/api/v1/runs", json={"epochs": 2}).json()["id"]
    for last in ("9" * 5000, "-1", "x", "1e3"):
        assert epochs_of(events(live, f"/api/v1/runs/{run_id}/events", last_event_id=last)) == [1, 2]


def latency_from_write_to_event(env: dict[str, str]) -> list[float]:
    """Serve the API alone; write epochs as a worker's flush does; time each until its event arrives."""
    port = free_port()
    migrations.upgrade()
    with session_scope() as session:
        run_id = run_service.create_run(session=session, spec=RunSpec(epochs=10)).id
    server = subprocess.Popen([SWEEPYARD, "api"], env={**os.environ, **env, "SWEEPYARD_PORT": str(port)})
    delays = []
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with client.stream("GET", f"/api/v1/runs/{run_id}/events", timeout=30) as response:
            lines = response.iter_lines()
            for epoch in range(1, 11):
                time.sleep(0.3 * (epoch % 3))  # writes fall at different points of the stream's polling
                written = time.monotonic()
                with session_scope() as session:
                    row = {"run_id": run_id, "epoch": epoch, "train_loss": 1.0, "val_loss": 1.0}
                    run_service.record_epochs(
                        session=session, rows=[{**row, "best_val_loss": 1.0, "val_accuracy": 0.5}]
                    )
                for line in lines:
                    if line == f"id: {epoch}":
                        delays.append(time.monotonic() - written)
                        break
            with session_scope() as session:
                run_service.cancel_run(session=session, run_id=run_id)
            assert any(line.startswith("event: run") for line in lines)  # then the stream ends
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return delays


def test_an_epoch_reaches_a_client_within_a_second_of_its_write_on_sqlite(
    sweepyard_env: dict[str, str],
) -> None:
    delays = latency_from_write_to_event(sweepyard_env)
    assert len(delays) == 10 and max(delays) < 1.0, delays


@pytest.mark.services
def test_an_epoch_reaches_a_client_within_a_second_of_its_write_on_postgres(
    postgres_env: dict[str, str],
) -> None:
    delays = latency_from_write_to_event(postgres_env)
    assert len(delays) == 10 and max(delays) < 1.0, delays
