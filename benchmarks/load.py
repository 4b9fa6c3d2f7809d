"""Load on the read side: 200 concurrent clients for 30 s against run status, run list and metric
history, on PostgreSQL holding 1,000 runs of 100 epochs (and one run of 10,000 epochs).

Needs a PostgreSQL server: by default postgres@127.0.0.1:5432 (database `test`), where it creates a
scratch database and drops it afterwards; SWEEPYARD_BENCH_POSTGRES_ADMIN_URL points elsewhere. Starts
`sweepyard api` as `make run` would, then prints requests/s, p50/p99 latency and errors.
Run it with `.venv/bin/python -m benchmarks.load [--clients 200] [--seconds 30] [--status running]`.
"""

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from app.core import config, db, queue
from app.core import migrate as migrations
from app.core.db import session_scope
from app.models import Run, RunStatus, utcnow
from app.schemas import RunSpec
from app.services import runs as run_service

ADMIN_URL = os.environ.get(
    "SWEEPYARD_BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def seed(runs: int, epochs: int, status: RunStatus) -> tuple[list[int], int]:
    """Runs with full histories, written in bulk; returns their ids and the id of one 10,000-epoch run."""
    ids = []
    with session_scope() as session:
        for i in range(runs):
            ids.append(run_service.create_run(session=session, spec=RunSpec(seed=i), tags=["load"]).id)
    for start in range(0, runs, 100):
        rows = [
            {
                "run_id": run_id,
                "epoch": e,
                "train_loss": 1 / e,
                "val_loss": 1.1 / e,
                "best_val_loss": 1.1 / e,
                "val_accuracy": 0.5 + e / 400,
            }
            for run_id in ids[start : start + 100]
            for e in range(1, epochs + 1)
        ]
        with session_scope() as session:
            run_service.record_epochs(session=session, rows=rows)
    # Finished, as most runs a dashboard reads are: a summary makes each run's JSON its usual size.
    summary = {"train_loss": 0.01, "val_loss": 0.011, "best_val_loss": 0.011, "best_epoch": epochs}
    summary |= {"test_loss": 0.012, "val_accuracy": 0.99, "test_accuracy": 0.995, "num_params": 13}
    with session_scope() as session:
        session.execute(
            sa.update(Run)
            .where(Run.id.in_(ids))
            .values(
                status=status.value,
                summary={**summary, "duration_s": 0.21},
                progress_epoch=epochs,
                started_at=utcnow(),
                finished_at=utcnow() if status is RunStatus.succeeded else None,
            )
        )
    with session_scope() as session:
        long_run = run_service.create_run(session=session, spec=RunSpec(epochs=10_000)).id
    long_rows: list[dict[str, Any]] = [
        {
            "run_id": long_run,
            "epoch": e,
            "train_loss": 1 / e,
            "val_loss": 1 / e,
            "best_val_loss": 1 / e,
            "val_accuracy": None,
        }
        for e in range(1, 10_001)
    ]
    with session_scope() as session:
        run_service.record_epochs(session=session, rows=long_rows)
    return ids, long_run


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """One GET on a kept-alive HTTP/1.1 connection; returns the status once the whole body is read.

    A few lines of asyncio instead of a full client library: the load generator shares the machine's
    cores with the server, and every microsecond it spends is one the server does not get."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def client_loop(
    port: int,
    ids: list[int],
    until: float,
    latencies: dict[str, list[float]],
    errors: list[str],
    rng: random.Random,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            kind = rng.random()
            if kind < 0.4:
                endpoint, path = "status", f"/api/v1/runs/{rng.choice(ids)}"
            elif kind < 0.7:
                endpoint, path = "list", f"/api/v1/runs?limit=20&offset={rng.randrange(0, 980)}"
            else:
                endpoint, path = "metrics", f"/api/v1/runs/{rng.choice(ids)}/metrics"
            started = time.perf_counter()
            try:
                status = await get(reader, writer, path)
                if status != 200:
                    errors.append(f"{status} {path}")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(f"{type(exc).__name__} {path}")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            latencies[endpoint].append(time.perf_counter() - started)
    finally:
        writer.close()


async def load(port: int, ids: list[int], clients: int, seconds: float) -> None:
    latencies: dict[str, list[float]] = {"status": [], "list": [], "metrics": []}
    errors: list[str] = []
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(client_loop(port, ids, until, latencies, errors, random.Random(i)) for i in range(clients))
    )
    elapsed = time.perf_counter() - started
    every = sorted(latency for kind in latencies.values() for latency in kind)
    print(
        f"{clients} clients for {seconds:.0f} s: {len(every) / elapsed:.0f} requests/s, "
        f"{percentiles(every)}, {len(errors)} errors" + (f" (first: {errors[0]})" if errors else "")
    )
    for endpoint, kind in latencies.items():
        print(f"  {endpoint:8} {len(kind) / elapsed:5.0f} requests/s, {percentiles(sorted(kind))}")


def percentiles(latencies: list[float]) -> str:
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99)]
    return f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--status",
        choices=[RunStatus.succeeded.value, RunStatus.running.value],
        default=RunStatus.succeeded.value,
        help="the seeded runs' status: running ones are read from the database every time",
    )
    args = parser.parse_args()
    name = f"sweepyard_load_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            os.environ.update({"SWEEPYARD_DATABASE_URL": url, "SWEEPYARD_VAR_DIR": var_dir})
            config.get_settings.cache_clear()
            db.forget_engines()
            queue._client.cache_clear()
            migrations.upgrade()
            started = time.perf_counter()
            ids, long_run = seed(1000, 100, RunStatus(args.status))
            seeded_s = time.perf_counter() - started
            # As autovacuum would have by the time anyone polls: statistics and a visibility map.
            with db.get_engine().execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
                connection.execute(sa.text("VACUUM ANALYZE"))
            print(f"seeded 1000 {args.status} runs x 100 epochs and one of 10,000 epochs in {seeded_s:.1f} s")
            db.forget_engines()
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            env = {**os.environ, "SWEEPYARD_PORT": str(port), "SWEEPYARD_LOG_LEVEL": "WARNING"}
            server = subprocess.Popen([str(Path(sys.executable).parent / "sweepyard"), "api"], env=env)
            base_url = f"http://127.0.0.1:{port}"
            try:
                while True:
                    try:
                        if httpx.get(f"{base_url}/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                timings = []
                for _ in range(20):
                    t = time.perf_counter()
                    history = httpx.get(f"{base_url}/api/v1/runs/{long_run}/metrics")
                    timings.append(time.perf_counter() - t)
                    assert len(history.json()["epoch"]) == 10_000
                median_ms, min_ms = statistics.median(timings) * 1000, min(timings) * 1000
                print(
                    f"metric history of one 10,000-epoch run: median {median_ms:.1f} ms, min {min_ms:.1f} ms"
                )
                asyncio.run(load(port, ids, args.clients, args.seconds))
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
    finally:
        db.forget_engines()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
