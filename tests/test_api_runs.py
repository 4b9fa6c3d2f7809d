"""The runs API: every endpoint, every 4xx, against a real embedded database and broker folder."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.models import RunStatus
from app.services import runs as run_service
from tests.helpers import queued_messages

RUNS = "/api/v1/runs"


def post_run(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(RUNS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def detail_for(response: Any, field: str) -> str:
    """The message of the validation error located at `field`."""
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    matching = [error["msg"] for error in errors if error["loc"][-1] == field]
    assert matching, f"no error names {field}: {errors}"
    return str(matching[0])


def test_create_run_fills_defaults_and_enqueues_after_commit(
    client: TestClient, sweepyard_env: dict[str, str]
) -> None:
    run = post_run(client)
    assert run["status"] == "queued"
    assert run["spec"] == {
        "dataset": "noisy_xor",
        "n_samples": 2000,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "noise": 0.1,
        "depth": 1,
        "width": 3,
        "activation": "tanh",
        "optimizer": "adam",
        "lr": 0.01,
        "weight_decay": 0.0,
        "batch_size": 64,
        "epochs": 100,
        "seed": 0,
        "device": "auto",
        "engine": "vectorized",
    }
    assert run["progress"] == {"epoch": 0, "epochs": 100}
    assert run["summary"] is None and run["error"] is None and run["started_at"] is None
    assert run["created_at"].endswith("Z") or run["created_at"].endswith("+00:00")
    messages = queued_messages(sweepyard_env["SWEEPYARD_VAR_DIR"])
    assert messages == [
        {"task": "sweepyard.train_runs", "run_ids": [run["id"]], "content_type": "application/json"}
    ]
    assert client.get(f"{RUNS}/{run['id']}").json() == run


def test_create_run_keeps_name_tags_and_overrides(client: TestClient) -> None:
    run = post_run(
        client,
        dataset="regression_1d",
        depth=3,
        width=8,
        lr=0.05,
        optimizer="sgd",
        epochs=7,
        name="fit",
        tags=["a", "b", "a", " c "],
    )
    assert run["name"] == "fit"
    assert run["tags"] == ["a", "b", "c"]
    assert run["spec"]["dataset"] == "regression_1d"
    assert (run["spec"]["depth"], run["spec"]["width"], run["spec"]["optimizer"]) == (3, 8, "sgd")
    assert run["progress"] == {"epoch": 0, "epochs": 7}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("depth", 17, "less than or equal to 16"),
        ("depth", -1, "greater than or equal to 0"),
        ("width", 0, "greater than or equal to 1"),
        ("width", 1025, "less than or equal to 1024"),
        ("n_samples", 9, "greater than or equal to 10"),
        ("n_samples", 1_000_001, "less than or equal to 1000000"),
        ("val_fraction", 0, "greater than 0"),
        ("test_fraction", 0.6, "less than or equal to 0.5"),
        ("noise", -0.1, "greater than or equal to 0"),
        ("noise", 11, "less than or equal to 10"),
        ("lr", 0, "greater than 0"),
        ("lr", 11, "less than or equal to 10"),
        ("weight_decay", 2, "less than or equal to 1"),
        ("batch_size", 0, "greater than or equal to 1"),
        ("epochs", 0, "greater than or equal to 1"),
        ("epochs", 10_001, "less than or equal to 10000"),
        ("seed", -1, "greater than or equal to 0"),
        ("seed", 2**31, "less than or equal to 2147483647"),
        ("dataset", "mnist", "'noisy_xor' or 'regression_1d'"),
        ("activation", "swish", "'tanh', 'relu', 'sigmoid' or 'gelu'"),
        ("optimizer", "rmsprop", "'adam' or 'sgd'"),
        ("device", "tpu", "'auto', 'cpu' or 'cuda'"),
        ("depth", "deep", "valid integer"),
        ("name", "x" * 201, "at most 200 characters"),
        ("tags", "xor", "valid list"),
        ("learning_rate", 0.1, "Extra inputs are not permitted"),
    ],
)
def test_create_run_rejects_out_of_range_fields(
    client: TestClient, field: str, value: Any, words: str
) -> None:
    assert words in detail_for(client.post(RUNS, json={field: value}), field)


def test_batch_size_is_limited_by_the_training_split(client: TestClient) -> None:
    response = client.post(RUNS, json={"batch_size": 1201})
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert "batch_size 1201" in message and "1200" in message
    assert post_run(client, batch_size=1200)["spec"]["batch_size"] == 1200


def test_splits_must_leave_training_points(client: TestClient) -> None:
    response = client.post(RUNS, json={"n_samples": 10, "val_fraction": 0.5, "test_fraction": 0.5})
    assert response.status_code == 422
    assert "no training points" in response.json()["detail"][0]["msg"]


def test_compute_budget_names_budget_and_cost(client: TestClient) -> None:
    response = client.post(
        RUNS, json={"n_samples": 1_000_000, "epochs": 10_000, "depth": 16, "width": 1024, "batch_size": 64}
    )
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert "compute budget of 1e+12" in message
    assert "600000 x 10000 x" in message


def test_compute_budget_is_a_setting(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.config import get_settings

    monkeypatch.setenv("SWEEPYARD_COMPUTE_BUDGET", "1e6")
    get_settings.cache_clear()
    # The default run costs 1200 x 100 x 13 = 1.56e6.
    assert "compute budget of 1e+06" in client.post(RUNS, json={}).json()["detail"][0]["msg"]
    assert client.post(RUNS, json={"epochs": 50}).status_code == 201


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"'])
def test_create_run_rejects_bodies_that_are_not_an_object(client: TestClient, body: str) -> None:
    response = client.post(RUNS, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_list_runs_filters_and_pages(client: TestClient) -> None:
    first = post_run(client, tags=["xor"])
    second = post_run(client, tags=["xor", "deep"], depth=3)
    third = post_run(client)
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[second["id"]], worker="w")

    listing = client.get(RUNS).json()
    assert listing["count"] == 3
    assert [run["id"] for run in listing["data"]] == [third["id"], second["id"], first["id"]]
    assert [r["id"] for r in client.get(RUNS, params={"tag": "xor"}).json()["data"]] == [
        second["id"],
        first["id"],
    ]
    assert [r["id"] for r in client.get(RUNS, params={"tag": "deep"}).json()["data"]] == [second["id"]]
    assert client.get(RUNS, params={"tag": "none"}).json() == {"data": [], "count": 0}
    running = client.get(RUNS, params={"status": "running"}).json()
    assert (running["count"], running["data"][0]["id"]) == (1, second["id"])
    assert client.get(RUNS, params={"sweep_id": 1}).json()["count"] == 0
    page = client.get(RUNS, params={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [run["id"] for run in page["data"]] == [second["id"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"sweep_id": 0}, "sweep_id"),
    ],
)
def test_list_runs_rejects_bad_filters(client: TestClient, params: dict[str, Any], field: str) -> None:
    detail_for(client.get(RUNS, params=params), field)


def test_unknown_and_malformed_run_ids(client: TestClient) -> None:
    for path in ("", "/metrics", "/predictions"):
        response = client.get(f"{RUNS}/999{path}")
        assert response.status_code == 404
        assert response.json() == {"detail": "run 999 not found"}
    assert client.post(f"{RUNS}/999/cancel").status_code == 404
    detail_for(client.get(f"{RUNS}/abc"), "run_id")
    detail_for(client.get(f"{RUNS}/0"), "run_id")


def test_cancel_a_queued_run_means_it_never_starts(client: TestClient) -> None:
    run = post_run(client)
    response = client.post(f"{RUNS}/{run['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    with session_scope() as session:
        assert run_service.claim_runs(session=session, run_ids=[run["id"]], worker="w") == []
    again = client.post(f"{RUNS}/{run['id']}/cancel")
    assert again.status_code == 409
    assert "already ended (cancelled)" in again.json()["detail"]


def test_cancel_a_running_run_marks_it_for_its_worker(client: TestClient) -> None:
    run = post_run(client)
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run["id"]], worker="w")
    assert client.post(f"{RUNS}/{run['id']}/cancel").json()["status"] == "cancelled"
    with session_scope() as session:
        assert run_service.stopped_run_ids(session=session, run_ids=[run["id"]], worker="w") == {run["id"]}


def record(run_id: int, epochs: int, accuracy: bool = True) -> None:
    rows = [
        {
            "run_id": run_id,
            "epoch": epoch,
            "train_loss": 1.0 / epoch,
            "val_loss": 2.0 / epoch,
            "best_val_loss": 2.0 / epoch,
            "val_accuracy": epoch / 10 if accuracy else None,
        }
        for epoch in range(1, epochs + 1)
    ]
    with session_scope() as session:
        run_service.record_epochs(session=session, rows=rows)


def test_metrics_json_is_columnar_and_keys_choose(client: TestClient) -> None:
    run = post_run(client)
    assert client.get(f"{RUNS}/{run['id']}/metrics").json() == {
        "run_id": run["id"],
        "epoch": [],
        "train_loss": [],
        "val_loss": [],
        "best_val_loss": [],
        "val_accuracy": [],
    }
    record(run["id"], 4)
    history = client.get(f"{RUNS}/{run['id']}/metrics").json()
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["train_loss"] == [1.0, 0.5, 1 / 3, 0.25]
    assert history["val_accuracy"] == [0.1, 0.2, 0.3, 0.4]
    chosen = client.get(f"{RUNS}/{run['id']}/metrics", params={"keys": "val_loss, train_loss"}).json()
    assert set(chosen) == {"run_id", "epoch", "val_loss", "train_loss"}
    assert client.get(f"{RUNS}/{run['id']}").json()["progress"] == {"epoch": 4, "epochs": 100}


def test_metrics_csv(client: TestClient) -> None:
    run = post_run(client, dataset="regression_1d")
    record(run["id"], 2, accuracy=False)
    response = client.get(f"{RUNS}/{run['id']}/metrics", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        "epoch,train_loss,val_loss,best_val_loss,val_accuracy",
        "1,1.0,2.0,2.0,",
        "2,0.5,1.0,1.0,",
    ]
    only = client.get(f"{RUNS}/{run['id']}/metrics", params={"format": "csv", "keys": "val_loss"})
    assert only.text.splitlines() == ["epoch,val_loss", "1,2.0", "2,1.0"]


def test_metrics_reject_unknown_keys_and_formats(client: TestClient) -> None:
    run = post_run(client)
    message = detail_for(client.get(f"{RUNS}/{run['id']}/metrics", params={"keys": "loss,val_loss"}), "keys")
    assert "unknown metric loss" in message and "train_loss" in message
    detail_for(client.get(f"{RUNS}/{run['id']}/metrics", params={"format": "xml"}), "format")


def test_replayed_epochs_overwrite_instead_of_duplicating(client: TestClient) -> None:
    run = post_run(client)
    record(run["id"], 3)
    with session_scope() as session:
        run_service.record_epochs(
            session=session,
            rows=[
                {
                    "run_id": run["id"],
                    "epoch": 2,
                    "train_loss": 9.0,
                    "val_loss": 9.0,
                    "best_val_loss": 0.5,
                    "val_accuracy": None,
                }
            ],
        )
    history = client.get(f"{RUNS}/{run['id']}/metrics").json()
    assert history["epoch"] == [1, 2, 3]
    assert history["train_loss"][1] == 9.0
    assert client.get(f"{RUNS}/{run['id']}").json()["progress"]["epoch"] == 3


def test_predictions_after_the_run_succeeds(client: TestClient) -> None:
    run = post_run(client)
    missing = client.get(f"{RUNS}/{run['id']}/predictions")
    assert missing.status_code == 404
    assert "written when a run succeeds, and it is queued" in missing.json()["detail"]
    predictions = {
        "inputs": [[0.0, 1.0], [1.0, 1.0], [0.1, 0.0]],
        "targets": [1.0, 0.0, 0.0],
        "predictions": [0.9, 0.2, 0.1],
    }
    summary = {"train_loss": 0.1, "test_loss": 0.2, "num_params": 13}
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run["id"]], worker="w")
        run_service.finish_run(
            session=session,
            run_id=run["id"],
            worker="w",
            status=RunStatus.succeeded,
            summary=summary,
            predictions=predictions,
        )
    body = client.get(f"{RUNS}/{run['id']}/predictions").json()
    assert body == {"run_id": run["id"], "task": "classification", "count": 3, "offset": 0, **predictions}
    window = client.get(f"{RUNS}/{run['id']}/predictions", params={"offset": 1, "limit": 1}).json()
    assert (window["count"], window["inputs"], window["predictions"]) == (3, [[1.0, 1.0]], [0.2])
    detail_for(client.get(f"{RUNS}/{run['id']}/predictions", params={"limit": 0}), "limit")
    finished = client.get(f"{RUNS}/{run['id']}").json()
    assert finished["status"] == "succeeded" and finished["summary"]["test_loss"] == 0.2
    assert finished["summary"]["val_accuracy"] is None
    assert client.post(f"{RUNS}/{run['id']}/cancel").status_code == 409
