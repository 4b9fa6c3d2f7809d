"""Datasets, health, readiness, errors when a dependency is down, and the OpenAPI document."""

import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import reset_caches

CONTRACT_PATHS = {
    ("get", "/api/v1/datasets"),
    ("post", "/api/v1/runs"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{run_id}"),
    ("get", "/api/v1/runs/{run_id}/metrics"),
    ("post", "/api/v1/runs/{run_id}/cancel"),
    ("get", "/api/v1/runs/{run_id}/predictions"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}
UNREACHABLE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/sweepyard"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_datasets_list_the_catalog(client: TestClient) -> None:
    datasets = {item["name"]: item for item in client.get("/api/v1/datasets").json()}
    assert set(datasets) == {"noisy_xor", "regression_1d"}
    assert (datasets["noisy_xor"]["task"], datasets["noisy_xor"]["input_dim"]) == ("classification", 2)
    assert (datasets["regression_1d"]["task"], datasets["regression_1d"]["input_dim"]) == ("regression", 1)
    assert "xor" in datasets["noisy_xor"]["description"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_database_down_gives_503_and_readiness_names_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPYARD_DATABASE_URL", UNREACHABLE_POSTGRES)
    reset_caches()
    for response in (client.get("/api/v1/runs"), client.post("/api/v1/runs", json={})):
        assert response.status_code == 503
        assert response.json()["detail"].startswith("the database is unavailable")
        assert response.headers["retry-after"] == "5"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"].startswith("unavailable: ")
    assert ready.json()["checks"]["broker"] == "ok"
    assert client.get("/healthz").status_code == 200


def test_broker_down_keeps_the_run_queued_and_readiness_names_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPYARD_BROKER_URL", UNREACHABLE_REDIS)
    reset_caches()
    started = time.monotonic()
    created = client.post("/api/v1/runs", json={})
    assert created.status_code == 201, "the database holds the run; the broker is told again later"
    assert time.monotonic() - started < 15
    assert client.get(f"/api/v1/runs/{created.json()['id']}").json()["status"] == "queued"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["broker"].startswith("unavailable: ")


def test_openapi_covers_the_contract_and_describes_every_field(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert CONTRACT_PATHS <= operations
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
    schemas = document["components"]["schemas"]
    for name in (
        "RunSpec",
        "RunCreate",
        "RunPublic",
        "RunSummary",
        "MetricsPublic",
        "PredictionsPublic",
        "DatasetPublic",
        "Readiness",
        "Progress",
        "RunsPublic",
    ):
        for field, schema in schemas[name]["properties"].items():
            assert schema.get("description"), f"{name}.{field} has no description"
    assert schemas["RunCreate"]["examples"][0] == {}
    assert schemas["RunSpec"]["properties"]["depth"]["maximum"] == 16
    assert client.get("/docs").status_code == 200


def test_the_api_process_never_imports_torch() -> None:
    import subprocess
    import sys

    code = "import sys, app.main; app.main.create_app(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
