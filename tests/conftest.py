"""Shared fixtures: a fresh embedded Sweepyard per test, and PostgreSQL / Redis when a test is about them.

Outside CI, tests that need PostgreSQL or Redis skip with the reason when those are down; with
SWEEPYARD_REQUIRE_SERVICES=1 (CI sets it) they fail instead.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.core import config, db, queue
from app.core import migrate as migrations

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
SERVICES_REQUIRED = os.environ.get("SWEEPYARD_REQUIRE_SERVICES") == "1"


def service_missing(what: str, exc: Exception) -> None:
    reason = f"{what} is not reachable ({type(exc).__name__}: {exc}); start it or run `bash .ci/run`"
    if SERVICES_REQUIRED:
        pytest.fail(f"SWEEPYARD_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def reset_caches() -> None:
    """Settings, engines and the broker client are cached per process; a test that changes the environment
    starts them afresh."""
    db.forget_engines()
    config.get_settings.cache_clear()
    queue._client.cache_clear()


@pytest.fixture
def sweepyard_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An embedded Sweepyard (SQLite file, file-system broker) in a temporary folder, migrated."""
    env = {
        "SWEEPYARD_VAR_DIR": str(tmp_path / "var"),
        "SWEEPYARD_DATABASE_URL": "",
        "SWEEPYARD_BROKER_URL": "filesystem://",
        "SWEEPYARD_QUEUE": "sweepyard.test",
        "SWEEPYARD_WORKERS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_caches()
    migrations.upgrade()
    yield env
    reset_caches()


@pytest.fixture
def client(sweepyard_env: dict[str, str]) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        service_missing("PostgreSQL at 127.0.0.1:5432", exc)
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"sweepyard_test_{uuid.uuid4().hex[:12]}"
    # No pooled connections: a test may restart the server in between.
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    reset_caches()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        service_missing("Redis at 127.0.0.1:6379", exc)
    return REDIS_URL


@pytest.fixture
def postgres_env(
    sweepyard_env: dict[str, str], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Like sweepyard_env, on a fresh PostgreSQL database (the broker stays embedded)."""
    monkeypatch.setenv("SWEEPYARD_DATABASE_URL", postgres_url)
    reset_caches()
    migrations.upgrade()
    return {**sweepyard_env, "SWEEPYARD_DATABASE_URL": postgres_url}
