"""Real processes: `sweepyard up` (API + Celery worker) trains runs submitted over HTTP.

On the embedded default (SQLite, file-system broker) and on PostgreSQL + Redis.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.e2e
SWEEPYARD = str(Path(sys.executable).parent / "sweepyard")
FINAL = {"succeeded", "failed", "cancelled", "pruned"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sweepyard_up(env: dict[str, str], log: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """Start `sweepyard up`, wait until it is ready, and stop it with Ctrl-C (SIGINT) afterwards."""
    port = free_port()
    full_env = {**os.environ, **env, "SWEEPYARD_PORT": str(port), "SWEEPYARD_WORKERS": "1"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [SWEEPYARD, "up"], env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"sweepyard up exited early:\n{log.read_text()[-3000:]}"
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready in 60 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield client, process
    finally:
        client.close()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise


def wait_for(client: httpx.Client, run_id: int, condition: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        if condition(run):
            return dict(run)
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {timeout} s: {run}"
        time.sleep(0.2)


def assert_trained(client: httpx.Client, run_id: int, epochs: int) -> dict[str, Any]:
    run = wait_for(client, run_id, lambda r: r["status"] in FINAL)
    assert run["status"] == "succeeded", run
    assert run["progress"] == {"epoch": epochs, "epochs": epochs}
    history = client.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert history["epoch"] == list(range(1, epochs + 1))
    assert all(len(history[key]) == epochs for key in ("train_loss", "val_loss", "best_val_loss"))
    assert run["summary"]["test_loss"] is not None and run["summary"]["num_params"] == 13
    assert run["device"] == "cpu" and run["worker"].startswith("sweepyard@")
    return run


def embedded_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SWEEPYARD_VAR_DIR": str(tmp_path / "var"),
        "SWEEPYARD_DATABASE_URL": "",
        "SWEEPYARD_BROKER_URL": "filesystem://",
        "SWEEPYARD_QUEUE": "sweepyard.e2e",
    }


def test_embedded_default_trains_a_run_submitted_over_http(tmp_path: Path) -> None:
    with sweepyard_up(embedded_env(tmp_path), tmp_path / "up.log") as (client, _):
        created = client.post("/api/v1/runs", json={"epochs": 40, "tags": ["e2e"]})
        assert created.status_code == 201
        run = assert_trained(client, created.json()["id"], 40)
        assert run["summary"]["test_accuracy"] > 0.9
        assert client.get(f"/api/v1/runs/{run['id']}/predictions").json()["count"] == 400
        assert client.get("/api/v1/runs", params={"tag": "e2e", "status": "succeeded"}).json()["count"] == 1


def test_ctrl_c_stops_cleanly_and_a_restart_trains_what_was_left(tmp_path: Path) -> None:
    env, log = embedded_env(tmp_path), tmp_path / "up.log"
    long_spec = {"n_samples": 2000, "batch_size": 32, "epochs": 600, "seed": 1}
    with sweepyard_up(env, log) as (client, process):
        interrupted = client.post("/api/v1/runs", json=long_spec).json()["id"]
        waiting = client.post("/api/v1/runs", json={"epochs": 5}).json()["id"]
        wait_for(client, interrupted, lambda r: r["progress"]["epoch"] > 0, timeout=60)
        assert client.get(f"/api/v1/runs/{waiting}").json()["status"] == "queued"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - started < 30
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{client.base_url}/healthz", timeout=2)

    with sweepyard_up(env, log) as (client, _):
        assert_trained(client, interrupted, 600)
        assert_trained(client, waiting, 5)


@pytest.mark.services
def test_postgres_and_redis_deployment(tmp_path: Path, postgres_url: str, redis_url: str) -> None:
    env = {
        **embedded_env(tmp_path),
        "SWEEPYARD_DATABASE_URL": postgres_url,
        "SWEEPYARD_BROKER_URL": redis_url,
        "SWEEPYARD_QUEUE": f"sweepyard.e2e.{uuid.uuid4().hex[:8]}",
    }
    with sweepyard_up(env, tmp_path / "up.log") as (client, _):
        assert client.get("/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}
        run_id = client.post("/api/v1/runs", json={"epochs": 30}).json()["id"]
        assert_trained(client, run_id, 30)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        epochs = (
            connection.execute(
                sa.text("SELECT epoch FROM epoch_metrics WHERE run_id = :id ORDER BY epoch"), {"id": run_id}
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert epochs == list(range(1, 31))
    assert not (tmp_path / "var" / "sweepyard.db").exists(), "nothing may go to the embedded database"


def wait_for_sweep(client: httpx.Client, sweep_id: int, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (sweep := client.get(f"/api/v1/sweeps/{sweep_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, f"sweep {sweep_id} still running after {timeout} s: {sweep}"
        time.sleep(0.3)
    return dict(sweep)


SWEEP_YAML = """
name: e2e
method: grid
metric: {name: test_loss, goal: minimize}
parameters:
  depth: {values: [1, 2]}
  lr: {values: [0.05, 0.00001]}
base: {n_samples: 400, epochs: 24, batch_size: 32}
repeats: 2
early_terminate: {type: hyperband, min_iter: 4, eta: 2}
"""


@pytest.mark.services
def test_a_sweep_through_a_real_worker_on_postgres_and_redis(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    env = {
        **embedded_env(tmp_path),
        "SWEEPYARD_DATABASE_URL": postgres_url,
        "SWEEPYARD_BROKER_URL": redis_url,
        "SWEEPYARD_QUEUE": f"sweepyard.e2e.{uuid.uuid4().hex[:8]}",
    }
    with sweepyard_up(env, tmp_path / "up.log") as (client, _):
        created = client.post(
            "/api/v1/sweeps", content=SWEEP_YAML, headers={"Content-Type": "application/yaml"}
        )
        assert created.status_code == 201, created.text
        sweep = wait_for_sweep(client, created.json()["id"])
        runs = client.get("/api/v1/runs", params={"sweep_id": sweep["id"], "limit": 100}).json()["data"]
        table = client.get(
            f"/api/v1/sweeps/{sweep['id']}/table", params={"rows": "depth", "cols": "lr"}
        ).json()

    assert sweep["status"] == "finished" and sweep["counts"]["total"] == 8
    assert sweep["counts"]["failed"] == 0 and sweep["counts"]["pruned"] >= 1
    pruned = [run for run in runs if run["status"] == "pruned"]
    # Successive halving is asynchronous: the first runs at a bracket set the bar, so which runs stop
    # depends on the order; a crawling learning rate is always among them.
    assert any(run["spec"]["lr"] == 0.00001 for run in pruned)
    for run in pruned:
        # Stopped at a bracket (4, 8 or 16 epochs), its history up to there kept.
        assert run["progress"]["epoch"] in (4, 8, 16)
    for run in runs:
        assert run["status"] in ("succeeded", "pruned")
        if run["status"] == "succeeded":
            assert run["progress"]["epoch"] == 24 and run["summary"]["test_loss"] is not None
    assert sweep["best_run"]["params"]["lr"] == 0.05
    succeeded: dict[tuple[int, float], int] = {}
    for run in runs:
        if run["status"] == "succeeded":
            key = (run["spec"]["depth"], run["spec"]["lr"])
            succeeded[key] = succeeded.get(key, 0) + 1
    assert {(c["row"], c["col"]): c["n"] for c in table["cells"]} == succeeded
