"""Nothing lost: real worker processes killed with SIGKILL, a broker that forgets, two workers racing.

Each test starts `sweepyard worker` processes of its own against a temporary SQLite database (and, for
the broker test, a Redis server of its own, so restarting it disturbs nothing else).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import Connection, select, text

from app.core import db, queue
from app.core.db import session_scope
from app.models import Checkpoint
from app.schemas import RunSpec
from app.services import runs as run_service
from app.services.runs import ClaimedRun
from tests.conftest import reset_caches, service_missing
from worker.training.engine import train_vectorized
from worker.training.observer import EpochMetrics, RunOutcome, TrainingObserver

pytestmark = pytest.mark.e2e
SWEEPYARD = str(Path(sys.executable).parent / "sweepyard")
FAST_RECOVERY = {
    "SWEEPYARD_WORKERS": "1",
    "SWEEPYARD_CHECKPOINT_INTERVAL_S": "0.2",
    "SWEEPYARD_HEARTBEAT_INTERVAL_S": "0.3",
    "SWEEPYARD_HEARTBEAT_TIMEOUT_S": "2",
    "SWEEPYARD_RECONCILE_INTERVAL_S": "0.5",
    "SWEEPYARD_METRICS_FLUSH_INTERVAL_S": "0.2",
    "SWEEPYARD_MAX_ATTEMPTS": "10",  # the kill test loses its worker three times on purpose
}


@pytest.fixture
def recovery_env(sweepyard_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in FAST_RECOVERY.items():
        monkeypatch.setenv(key, value)
    reset_caches()
    return {**sweepyard_env, **FAST_RECOVERY}


@contextmanager
def worker_process(env: dict[str, str], log: Path, processes: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [SWEEPYARD, "worker", "--concurrency", str(processes)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def kill_9(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's whole process group: main process and pool processes, no goodbyes."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def queue_runs(specs: list[RunSpec]) -> list[int]:
    with session_scope() as session:
        ids = [run_service.create_run(session=session, spec=spec).id for spec in specs]
    assert queue.enqueue_training(ids)
    return ids


def runs_state(ids: list[int]) -> list[dict[str, Any]]:
    with session_scope() as session:
        states = []
        for run_id in ids:
            run = run_service.get_run(session=session, run_id=run_id)
            states.append(
                {
                    "status": run.status,
                    "progress": run.progress_epoch,
                    "attempts": run.attempts,
                    "summary": run.summary,
                    "worker": run.worker,
                }
            )
        return states


def wait_until(condition: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, (
            f"{what} after {timeout} s; worker log:\n{log.read_text()[-4000:]}"
        )
        time.sleep(0.05)


class Keep(TrainingObserver):
    def __init__(self) -> None:
        self.epochs: dict[int, list[EpochMetrics]] = {}
        self.outcomes: dict[int, RunOutcome] = {}

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None:
        self.epochs.setdefault(run_id, []).append(metrics)

    def finished(self, run_id: int, outcome: RunOutcome) -> None:
        self.outcomes[run_id] = outcome


def test_kill_9_mid_bundle_then_resume_gives_the_uninterrupted_histories(
    recovery_env: dict[str, str], tmp_path: Path
) -> None:
    specs = [
        RunSpec(n_samples=4000, batch_size=32, epochs=160, depth=2, width=w, seed=w, lr=0.005 * w)
        for w in (2, 3, 4, 6)
    ]
    torch.set_num_threads(1)
    expected = Keep()
    train_vectorized([ClaimedRun(i, spec) for i, spec in enumerate(specs)], expected)

    ids = queue_runs(specs)
    log = tmp_path / "worker.log"
    kill_points = sorted(random.Random(5).sample(range(15, 140), 3))

    def reached(epoch: int, life: int) -> bool:
        # Claimed by this life of the worker (progress alone may be left over from the last one).
        states = runs_state(ids)
        return all(s["attempts"] == life for s in states) and min(s["progress"] for s in states) >= epoch

    for life, kill_at in enumerate(kill_points, start=1):
        with worker_process(recovery_env, log) as worker:
            wait_until(lambda e=kill_at, n=life: reached(e, n), 90, f"no run reached epoch {kill_at}", log)
            kill_9(worker)
        assert all(s["status"] == "running" for s in runs_state(ids)), "killed mid-bundle"

    def checkpoints_left() -> int:
        with session_scope() as session:
            return len(session.scalars(select(Checkpoint.id)).all())

    with worker_process(recovery_env, log):
        wait_until(
            lambda: all(s["status"] == "succeeded" for s in runs_state(ids)), 90, "not all succeeded", log
        )
        # The worker deletes the bundle's checkpoint right after writing the last outcome.
        wait_until(lambda: checkpoints_left() == 0, 10, "the checkpoint was not deleted at the end", log)

    for run_id, states in zip(ids, runs_state(ids), strict=True):
        want = expected.epochs[ids.index(run_id)]
        with session_scope() as session:
            history = run_service.get_metrics(session=session, run_id=run_id)
        assert history.epoch == list(range(1, 161)), "every epoch once: none lost, none duplicated"
        assert history.train_loss == [m.train_loss for m in want]
        assert history.val_loss == [m.val_loss for m in want]
        assert history.best_val_loss == [m.best_val_loss for m in want]
        summary = expected.outcomes[ids.index(run_id)].summary
        assert summary is not None and states["summary"] is not None
        assert {k: v for k, v in states["summary"].items() if k != "duration_s"} == {
            k: v for k, v in summary.items() if k != "duration_s"
        }
        assert states["attempts"] == len(kill_points) + 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    server = shutil.which("redis-server")
    if server is None:
        service_missing("redis-server (the binary)", FileNotFoundError("redis-server"))
    assert server is not None
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the private Redis did not start"
                time.sleep(0.05)
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_runs_queued_when_redis_restarts_without_persistence_all_finish(
    recovery_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    env = {**recovery_env, "SWEEPYARD_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    monkeypatch.setenv("SWEEPYARD_BROKER_URL", env["SWEEPYARD_BROKER_URL"])
    reset_caches()
    log = tmp_path / "worker.log"
    with private_redis(port) as redis_server:
        with worker_process(env, log):
            busy = queue_runs([RunSpec(n_samples=4000, batch_size=32, epochs=80, seed=1)])
            wait_until(
                lambda: runs_state(busy)[0]["status"] == "running", 60, "the first run did not start", log
            )
            waiting = queue_runs([RunSpec(epochs=20, seed=s, depth=3) for s in range(3)])
            assert (queue.queued_message_count() or 0) >= 1
            redis_server.kill()  # no persistence: the queued message is gone
            redis_server.wait(timeout=10)
            with private_redis(port):
                assert queue.queued_message_count() == 0
                everything = busy + waiting
                wait_until(
                    lambda: all(s["status"] == "succeeded" for s in runs_state(everything)),
                    120,
                    "runs lost with the broker did not finish",
                    log,
                )
    assert "sending them again" in log.read_text()


def test_two_workers_racing_for_one_run_train_it_once(recovery_env: dict[str, str], tmp_path: Path) -> None:
    [run_id] = queue_runs([RunSpec(n_samples=2000, epochs=60, seed=3)])
    for _ in range(5):
        assert queue.enqueue_training([run_id])
    log = tmp_path / "worker.log"
    with (
        worker_process(recovery_env, log, processes=2),
        worker_process(recovery_env, tmp_path / "second.log"),
    ):
        wait_until(
            lambda: runs_state([run_id])[0]["status"] == "succeeded", 90, "the run did not finish", log
        )
        time.sleep(1)  # the duplicate messages are consumed meanwhile
    [state] = runs_state([run_id])
    assert state["attempts"] == 1, "claimed once, however many messages and workers"
    with session_scope() as session:
        assert run_service.get_metrics(session=session, run_id=run_id).epoch == list(range(1, 61))


def postgres_cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            version,
            "main",
            action,
            *(["-m", "fast"] if action == "stop" else []),
        ],
        check=True,
        timeout=60,
    )


@pytest.mark.services
def test_postgres_stopping_mid_training_loses_no_epoch_and_the_api_answers_503(
    postgres_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        service_missing("a local PostgreSQL cluster to stop and start", FileNotFoundError("pg_ctlcluster"))
    # A blip shorter than the heartbeat timeout: the worker waits it out instead of the run moving.
    env = {**postgres_env, **FAST_RECOVERY, "SWEEPYARD_HEARTBEAT_TIMEOUT_S": "60"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_caches()
    from fastapi.testclient import TestClient

    from app.main import create_app

    spec = RunSpec(n_samples=4000, batch_size=32, epochs=150, depth=2, width=4, seed=9)
    torch.set_num_threads(1)
    expected = Keep()
    train_vectorized([ClaimedRun(1, spec)], expected)
    ids = queue_runs([spec])
    log = tmp_path / "worker.log"
    with worker_process(env, log), TestClient(create_app()) as api:
        wait_until(lambda: runs_state(ids)[0]["progress"] >= 20, 90, "training did not start", log)
        postgres_cluster("stop")
        try:
            during = api.get(f"/api/v1/runs/{ids[0]}")
            ready = api.get("/readyz")
            time.sleep(3)
        finally:
            postgres_cluster("start")
        assert during.status_code == 503 and "database is unavailable" in during.json()["detail"]
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unavailable")
        assert ready.json()["checks"]["broker"] == "ok"
        wait_until(lambda: runs_state(ids)[0]["status"] == "succeeded", 120, "the run did not finish", log)
    with session_scope() as session:
        history = run_service.get_metrics(session=session, run_id=ids[0])
    assert history.epoch == list(range(1, 151)), "no epoch lost, none twice"
    assert history.val_loss == [m.val_loss for m in expected.epochs[1]]
    assert runs_state(ids)[0]["attempts"] == 1, "the worker waited the blip out"
    assert "Retrying" in log.read_text() or "heartbeat failed" in log.read_text()


@pytest.mark.services
def test_a_read_after_a_database_restart_retries_on_a_fresh_connection(postgres_env: dict[str, str]) -> None:
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        service_missing("a local PostgreSQL cluster to restart", FileNotFoundError("pg_ctlcluster"))

    def server_pid(connection: Connection) -> int:
        return int(connection.scalar(text("SELECT pg_backend_pid()")) or 0)

    before = db.read(server_pid)  # the pool now holds this connection
    postgres_cluster("stop")
    postgres_cluster("start")
    # The pooled connection died with the server: the read finds out, and retries on a new one.
    assert db.read(server_pid) != before
