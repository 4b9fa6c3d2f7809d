"""Access control, CORS, body limits and the loopback-only default."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import reset_caches

TOKEN = "s3cret-token"
RIGHT = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def guarded(sweepyard_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from app.main import create_app

    monkeypatch.setenv("SWEEPYARD_API_TOKEN", TOKEN)
    reset_caches()
    with TestClient(create_app()) as client:
        yield client


def every_operation(client: TestClient) -> list[tuple[str, str]]:
    document = client.get("/openapi.json", headers=RIGHT).json()
    operations = [
        (method.upper(), path.replace("{run_id}", "1").replace("{sweep_id}", "1"))
        for path, item in document["paths"].items()
        for method in item
    ]
    return [*operations, ("GET", "/docs"), ("GET", "/openapi.json")]


def test_every_endpoint_but_healthz_needs_the_token(guarded: TestClient) -> None:
    assert guarded.post("/api/v1/runs", json={}, headers=RIGHT).status_code == 201
    sweep = {"method": "grid", "parameters": {"depth": {"values": [1]}}}
    assert guarded.post("/api/v1/sweeps", json=sweep, headers=RIGHT).status_code == 201
    operations = every_operation(guarded)
    assert len(operations) >= 18
    for method, path in operations:
        body = {"json": sweep} if path == "/api/v1/sweeps" else {"json": {}} if method == "POST" else {}
        none = guarded.request(method, path, **body)  # type: ignore[arg-type]
        wrong = guarded.request(method, path, headers={"Authorization": "Bearer nope"}, **body)  # type: ignore[arg-type]
        right = guarded.request(method, path, headers=RIGHT, **body)  # type: ignore[arg-type]
        if path == "/healthz":
            assert none.status_code == wrong.status_code == right.status_code == 200
            continue
        assert none.status_code == 401, (method, path)
        assert none.headers["www-authenticate"] == "Bearer"
        assert "SWEEPYARD_API_TOKEN" in none.json()["detail"]
        assert wrong.status_code == 401, (method, path)
        assert right.status_code not in (401, 403) and right.status_code < 500, (method, path, right.text)


def test_token_variants_are_refused(guarded: TestClient) -> None:
    for header in (TOKEN, f"bearer {TOKEN}", f"Bearer {TOKEN} ", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}"):
        assert guarded.get("/api/v1/runs", headers={"Authorization": header}).status_code == 401, header


def test_without_a_token_the_api_is_open_and_cors_is_off(client: TestClient) -> None:
    response = client.get("/api/v1/runs", headers={"Origin": "https://elsewhere.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/v1/runs",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_configured_origins(
    sweepyard_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.main import create_app

    monkeypatch.setenv("SWEEPYARD_CORS_ORIGINS", '["https://notebook.example"]')
    reset_caches()
    with TestClient(create_app()) as client:
        allowed = client.get("/api/v1/runs", headers={"Origin": "https://notebook.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://notebook.example"
        other = client.get("/api/v1/runs", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_bodies_over_the_limit_get_413(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    big = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    response = client.post("/api/v1/runs", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "limit is 1000000" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body arrives
        for _ in range(11):
            yield b" " * 100_000

    streamed = client.post("/api/v1/sweeps", content=chunks(), headers={"Content-Type": "application/yaml"})
    assert streamed.status_code == 413
    assert client.post("/api/v1/runs", json={"name": "x" * 100}).status_code == 201


def test_the_api_refuses_an_open_address_without_a_token(tmp_path: Path) -> None:
    sweepyard = str(Path(sys.executable).parent / "sweepyard")
    env = {**os.environ, "SWEEPYARD_VAR_DIR": str(tmp_path), "SWEEPYARD_HOST": "0.0.0.0"}
    env.pop("SWEEPYARD_API_TOKEN", None)
    for command in ("api", "up"):
        result = subprocess.run([sweepyard, command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "refusing to serve on 0.0.0.0 without a token" in result.stderr
