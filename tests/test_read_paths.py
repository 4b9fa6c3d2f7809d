"""The polled read paths: one query each, the same JSON everywhere, and a cache only for what is final."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.core.cache import ImmutableResponses
from app.core.db import get_engine, session_scope
from app.models import RunStatus
from app.services import runs as run_service

ROW = {"train_loss": 0.5, "val_loss": 0.6, "best_val_loss": 0.6, "val_accuracy": 0.7}


def test_the_cache_keeps_the_most_recently_used_within_its_size() -> None:
    cache = ImmutableResponses(max_bytes=800)
    cache.put("a", b"x" * 100)
    cache.put("b", b"y" * 100)
    assert cache.get("a") == b"x" * 100  # a is now the most recent
    for key in "cdefghi":  # nine of 100 bytes: one must go, the least recently used
        cache.put(key, b"z" * 100)
    assert cache.size <= 800
    assert cache.get("b") is None and cache.get("a") is not None
    cache.put("huge", b"h" * 200)  # over an eighth of the budget: never kept
    assert cache.get("huge") is None


def statements_during(work: Any) -> int:
    count = 0

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", counted)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_status_and_history_are_one_query_each_and_a_list_two(client: TestClient) -> None:
    run_id = client.post("/api/v1/runs", json={"tags": ["b", "a"], "epochs": 3}).json()["id"]
    client.post("/api/v1/runs", json={})
    assert statements_during(lambda: client.get(f"/api/v1/runs/{run_id}")) == 1
    # The page's ids and count; then the runs the cache of succeeded ones does not hold.
    assert statements_during(lambda: client.get("/api/v1/runs", params={"tag": "a"})) == 2
    assert statements_during(lambda: client.get(f"/api/v1/runs/{run_id}/metrics")) == 1
    # Past the end the window count has no row to ride on: a second query counts.
    page = client.get("/api/v1/runs", params={"offset": 10, "status": "queued"}).json()
    assert page == {"data": [], "count": 2}
    listed = client.get("/api/v1/runs", params={"tag": "a"}).json()
    assert listed["count"] == 1 and listed["data"] == [client.get(f"/api/v1/runs/{run_id}").json()]
    assert listed["data"][0]["tags"] == ["b", "a"]
    assert client.get("/api/v1/runs/999/metrics").status_code == 404


def test_a_run_reads_fresh_until_it_succeeds_then_from_memory(client: TestClient) -> None:
    run_id = client.post("/api/v1/runs", json={"epochs": 2}).json()["id"]
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued"
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run_id], worker="w@host/1")
        run_service.record_epochs(session=session, rows=[{"run_id": run_id, "epoch": 1, **ROW}])
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    assert client.get(f"/api/v1/runs/{run_id}/metrics").json()["epoch"] == [1]
    with session_scope() as session:
        run_service.record_epochs(session=session, rows=[{"run_id": run_id, "epoch": 2, **ROW}])
        run_service.finish_run(
            session=session, run_id=run_id, worker="w@host/1", status=RunStatus.succeeded, summary=None
        )
    run = client.get(f"/api/v1/runs/{run_id}").json()
    history = client.get(f"/api/v1/runs/{run_id}/metrics").json()
    assert run["status"] == "succeeded" and history["epoch"] == [1, 2]
    # Succeeded: nothing writes to it again, so the next reads need no query, and answer the same.
    assert statements_during(lambda: client.get(f"/api/v1/runs/{run_id}")) == 0
    assert statements_during(lambda: client.get(f"/api/v1/runs/{run_id}/metrics")) == 0
    assert statements_during(lambda: client.get("/api/v1/runs")) == 1  # the page's ids only
    assert client.get("/api/v1/runs").json() == {"data": [run], "count": 1}
    assert client.get(f"/api/v1/runs/{run_id}").json() == run
    assert client.get(f"/api/v1/runs/{run_id}/metrics").json() == history
    # Other metric selections and CSV are separate answers.
    assert client.get(f"/api/v1/runs/{run_id}/metrics", params={"keys": "val_loss"}).json() == {
        "run_id": run_id,
        "epoch": [1, 2],
        "val_loss": [0.6, 0.6],
    }
    assert client.get(f"/api/v1/runs/{run_id}/metrics", params={"format": "csv"}).text.startswith("epoch,")


@pytest.mark.services
def test_postgres_builds_the_same_history_json(postgres_env: dict[str, str]) -> None:
    from app.main import create_app

    with TestClient(create_app()) as client:
        empty = client.post("/api/v1/runs", json={"dataset": "regression_1d"}).json()["id"]
        assert client.get(f"/api/v1/runs/{empty}/metrics").json() == {
            "run_id": empty,
            "epoch": [],
            "train_loss": [],
            "val_loss": [],
            "best_val_loss": [],
            "val_accuracy": [],
        }
        run_id = client.post("/api/v1/runs", json={}).json()["id"]
        rows = [
            {**ROW, "run_id": run_id, "epoch": epoch, "val_loss": 1 / epoch, "val_accuracy": None}
            for epoch in (3, 1, 2)
        ]
        with session_scope() as session:
            run_service.record_epochs(session=session, rows=rows)
        history = client.get(f"/api/v1/runs/{run_id}/metrics", params={"keys": "val_loss,val_accuracy"})
        assert history.json() == {
            "run_id": run_id,
            "epoch": [1, 2, 3],
            "val_loss": [1.0, 0.5, 1 / 3],
            "val_accuracy": [None, None, None],
        }
        assert client.get("/api/v1/runs/999/metrics").status_code == 404
