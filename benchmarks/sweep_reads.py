"""How long reading a big sweep's results takes: the table, importance, parallel rows and the sweep.

Makes a 1,000-run random sweep in a temporary SQLite database (and in PostgreSQL when
SWEEPYARD_BENCH_POSTGRES_URL names an empty database), marks every run succeeded with a synthetic summary,
then times each read endpoint through the API in-process. Run it with
`.venv/bin/python -m benchmarks.sweep_reads`.
"""

import os
import statistics
import tempfile
import time

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core import config, db, queue
from app.core import migrate as migrations
from app.core.db import session_scope
from app.main import create_app
from app.models import Run

RUNS = 1000
SWEEP = {
    "method": "random",
    "run_cap": RUNS,
    "seed": 1,
    "parameters": {
        "depth": {"distribution": "int_uniform", "min": 0, "max": 3},
        "width": {"distribution": "int_uniform", "min": 1, "max": 3},
        "lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1},
        "noise": {"distribution": "uniform", "min": 0.05, "max": 0.4},
    },
}
READS = {
    "table (depth x width)": "/table?rows=depth&cols=width",
    "table as markdown": "/table?rows=depth&cols=width&format=markdown",
    "importance": "/importance",
    "parallel": "/parallel",
    "sweep (counts, best run)": "",
}


def bench(database_url: str, label: str) -> None:
    os.environ["SWEEPYARD_DATABASE_URL"] = database_url
    os.environ["SWEEPYARD_LOG_LEVEL"] = "WARNING"  # no line per request between the figures
    config.get_settings.cache_clear()
    db.forget_engines()
    queue._client.cache_clear()
    migrations.upgrade()
    client = TestClient(create_app())
    started = time.perf_counter()
    sweep_id = client.post("/api/v1/sweeps", json=SWEEP).json()["id"]
    created_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    with session_scope() as session:
        for run in session.query(Run).filter(Run.sweep_id == sweep_id):
            loss = 0.7 - 0.05 * run.spec["depth"] * run.spec["width"] + rng.normal(0, 0.02)
            session.execute(
                update(Run)
                .where(Run.id == run.id)
                .values(status="succeeded", summary={"test_loss": loss, "num_params": 13, "val_loss": loss})
            )
    print(f"{label}: created a {RUNS}-run sweep over HTTP in {created_s * 1000:.0f} ms")
    for name, path in READS.items():
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            response = client.get(f"/api/v1/sweeps/{sweep_id}{path}")
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        print(f"  {name:<26} median {statistics.median(timings) * 1000:6.1f} ms over {RUNS} finished runs")


def main() -> None:
    with tempfile.TemporaryDirectory() as var_dir:
        os.environ["SWEEPYARD_VAR_DIR"] = var_dir
        os.environ["SWEEPYARD_BROKER_URL"] = "filesystem://"
        bench(f"sqlite:///{var_dir}/bench.db", "SQLite")
        postgres = os.environ.get("SWEEPYARD_BENCH_POSTGRES_URL")
        if postgres:
            bench(postgres, "PostgreSQL")


if __name__ == "__main__":
    main()
