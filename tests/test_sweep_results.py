"""Sweep results: tables, importance, parallel rows, best run, status, cancel, bayes growth and pruning.

Runs are finished through the services with summaries the test chooses, so every statistic can be checked
against numbers computed here independently.
"""

import random
import statistics
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.models import RunStatus
from app.services import pruning, sweeps
from app.services import runs as run_service
from tests.helpers import queued_messages

SWEEPS = "/api/v1/sweeps"
GRID: dict[str, Any] = {
    "name": "depth-vs-width",
    "method": "grid",
    "parameters": {"depth": {"values": [0, 1, 2, 3]}, "width": {"values": [1, 2, 3]}},
    "base": {"epochs": 10},
    "repeats": 3,
}


def create(client: TestClient, config: dict[str, Any]) -> dict[str, Any]:
    response = client.post(SWEEPS, json=config)
    assert response.status_code == 201, response.text
    return dict(response.json())


def sweep_runs(client: TestClient, sweep_id: int) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/runs", params={"sweep_id": sweep_id, "limit": 1000}).json()["data"])


def finish(run_id: int, status: RunStatus = RunStatus.succeeded, **summary: float) -> None:
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run_id], worker="test")
        run_service.finish_run(session=session, run_id=run_id, worker="test", status=status, summary=summary)


def test_table_statistics_match_an_independent_computation(client: TestClient) -> None:
    sweep = create(client, GRID)
    rng = random.Random(0)
    expected: dict[tuple[int, int], list[float]] = {}
    for run in sweep_runs(client, sweep["id"]):
        loss = rng.uniform(0, 1)
        finish(run["id"], test_loss=loss, num_params=run["spec"]["width"] * 10)
        expected.setdefault((run["spec"]["depth"], run["spec"]["width"]), []).append(loss)

    table = client.get(f"{SWEEPS}/{sweep['id']}/table", params={"rows": "depth", "cols": "width"}).json()
    assert (table["rows"], table["cols"], table["metric"]) == ("depth", "width", "test_loss")
    assert table["row_values"] == [0, 1, 2, 3] and table["col_values"] == [1, 2, 3]
    assert table["averaged_over"] == []
    assert len(table["cells"]) == 12
    for cell in table["cells"]:
        values = np.array(expected[(cell["row"], cell["col"])])
        assert cell["n"] == 3
        assert cell["mean"] == pytest.approx(values.mean(), abs=1e-12)
        assert cell["std"] == pytest.approx(values.std(ddof=1), abs=1e-12)

    by_params = client.get(f"{SWEEPS}/{sweep['id']}/table", params={"metric": "num_params"}).json()
    assert by_params["rows"] == "depth" and by_params["cols"] == "width", "defaults: the first two swept"
    assert {(c["col"], c["mean"], c["std"]) for c in by_params["cells"]} == {
        (1, 10, 0),
        (2, 20, 0),
        (3, 30, 0),
    }


def test_table_csv_and_markdown(client: TestClient) -> None:
    sweep = create(client, {**GRID, "parameters": {"depth": {"values": [0, 1]}, "width": {"values": [1, 2]}}})
    losses: dict[tuple[int, int], list[float]] = {}
    for i, run in enumerate(sweep_runs(client, sweep["id"])):
        losses.setdefault((run["spec"]["depth"], run["spec"]["width"]), []).append(0.1 * (i + 1))
        finish(run["id"], test_loss=0.1 * (i + 1))
    url = f"{SWEEPS}/{sweep['id']}/table"

    csv_lines = client.get(url, params={"format": "csv"}).text.splitlines()
    assert csv_lines[0] == "depth,width,mean,std,n"
    assert len(csv_lines) == 5
    depth, width, mean, std, n = csv_lines[1].split(",")
    values = losses[(int(depth), int(width))]
    assert (float(mean), float(std), int(n)) == pytest.approx(
        (statistics.fmean(values), statistics.stdev(values), 3)
    )

    markdown = client.get(url, params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    lines = markdown.text.splitlines()
    assert lines[0] == "| depth \\ width | 1 | 2 |"
    assert lines[1] == "|---|---|---|"
    assert lines[2].startswith("| 0 | ") and lines[3].startswith("| 1 | ")
    first = losses[(0, 1)]
    assert f"{statistics.fmean(first):.4g} ± {statistics.stdev(first):.2g}" in lines[2]
    assert lines[-1] == "test_loss, mean ± std (ddof=1) over n = 3 runs per cell."


def test_table_averages_over_other_parameters_and_skips_unfinished_runs(client: TestClient) -> None:
    config = {**GRID, "parameters": {**GRID["parameters"], "lr": {"values": [0.01, 0.1]}}, "repeats": 1}
    sweep = create(client, config)
    runs = sweep_runs(client, sweep["id"])
    finished = [run for run in runs if run["spec"]["depth"] != 3]
    for run in finished:
        finish(run["id"], test_loss=run["spec"]["lr"] * 10)
    finish(next(r for r in runs if r["spec"]["depth"] == 3)["id"], RunStatus.failed, test_loss=99.0)
    table = client.get(f"{SWEEPS}/{sweep['id']}/table").json()
    assert table["averaged_over"] == ["lr"]
    assert table["row_values"] == [0, 1, 2], "failed and queued runs are left out"
    assert all(cell["n"] == 2 and cell["mean"] == pytest.approx(0.55) for cell in table["cells"])
    single = client.get(f"{SWEEPS}/{sweep['id']}/table", params={"rows": "lr", "cols": ""}).json()
    assert single["cols"] is None and single["row_values"] == [0.01, 0.1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rows": "colour"}, "rows"),
        ({"rows": "depth", "cols": "depth"}, "cols"),
        ({"metric": "loss"}, "metric"),
        ({"format": "xlsx"}, "format"),
    ],
)
def test_table_rejects_bad_queries(client: TestClient, params: dict[str, str], field: str) -> None:
    sweep = create(client, GRID)
    response = client.get(f"{SWEEPS}/{sweep['id']}/table", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


def test_unknown_sweeps_are_404(client: TestClient) -> None:
    for path in ("", "/table", "/importance", "/parallel"):
        response = client.get(f"{SWEEPS}/77{path}")
        assert (response.status_code, response.json()) == (404, {"detail": "sweep 77 not found"})
    assert client.post(f"{SWEEPS}/77/cancel").status_code == 404
    assert client.get(f"{SWEEPS}/0").status_code == 422


def test_importance_finds_the_parameter_that_matters(client: TestClient) -> None:
    config = {
        "method": "random",
        "run_cap": 60,
        "seed": 1,
        "parameters": {
            "depth": {"distribution": "int_uniform", "min": 0, "max": 3},
            "lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1},
            "activation": {"values": ["tanh", "relu"]},
        },
    }
    sweep = create(client, config)
    rng = np.random.default_rng(0)
    depths, losses = [], []
    for run in sweep_runs(client, sweep["id"]):
        loss = 0.7 - 0.2 * run["spec"]["depth"] + rng.normal(0, 0.01)
        finish(run["id"], test_loss=loss)
        depths.append(run["spec"]["depth"])
        losses.append(loss)
    result = client.get(f"{SWEEPS}/{sweep['id']}/importance").json()
    assert result["n_runs"] == 60 and result["metric"] == "test_loss" and "PedAnova" in result["evaluator"]
    names = [p["name"] for p in result["parameters"]]
    assert names[0] == "depth" and set(names) == {"depth", "lr", "activation"}
    scores = {p["name"]: p for p in result["parameters"]}
    assert scores["depth"]["importance"] > 0.5
    assert sum(p["importance"] for p in result["parameters"]) == pytest.approx(1.0)
    assert all(0 <= p["importance"] <= 1 for p in result["parameters"])
    assert scores["depth"]["correlation"] == pytest.approx(np.corrcoef(depths, losses)[0, 1])
    assert scores["activation"]["correlation"] is None


def test_importance_before_any_run_finished(client: TestClient) -> None:
    sweep = create(client, GRID)
    result = client.get(f"{SWEEPS}/{sweep['id']}/importance").json()
    assert result["n_runs"] == 0
    assert [(p["importance"], p["correlation"]) for p in result["parameters"]] == [(0.0, None), (0.0, None)]


def test_parallel_rows_best_run_and_status(client: TestClient) -> None:
    sweep = create(client, {**GRID, "repeats": 1, "metric": {"name": "test_accuracy", "goal": "maximize"}})
    runs = sweep_runs(client, sweep["id"])
    assert client.get(f"{SWEEPS}/{sweep['id']}").json()["status"] == "running"
    for run in runs:
        finish(run["id"], test_accuracy=0.5 + 0.01 * run["id"], test_loss=1.0)
    best = max(runs, key=lambda r: r["id"])
    read = client.get(f"{SWEEPS}/{sweep['id']}").json()
    assert read["status"] == "finished"
    assert read["counts"] == {
        "queued": 0,
        "running": 0,
        "succeeded": 12,
        "failed": 0,
        "cancelled": 0,
        "pruned": 0,
        "total": 12,
    }
    assert read["best_run"]["id"] == best["id"]
    assert read["best_run"]["value"] == pytest.approx(0.5 + 0.01 * best["id"])
    assert read["best_run"]["params"] == {"depth": best["spec"]["depth"], "width": best["spec"]["width"]}

    parallel = client.get(f"{SWEEPS}/{sweep['id']}/parallel").json()
    assert parallel["parameters"] == ["depth", "width"] and parallel["metric"] == "test_accuracy"
    assert [row["run_id"] for row in parallel["data"]] == sorted(r["id"] for r in runs)
    assert parallel["data"][0]["params"] == {
        "depth": runs[-1]["spec"]["depth"],
        "width": runs[-1]["spec"]["width"],
    }
    listing = client.get(SWEEPS).json()
    assert listing["count"] == 1 and listing["data"][0]["id"] == sweep["id"]


def test_cancel_sweep_cancels_queued_and_running_runs(client: TestClient) -> None:
    sweep = create(client, GRID)
    runs = sweep_runs(client, sweep["id"])
    finish(runs[0]["id"], test_loss=0.1)
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[runs[1]["id"]], worker="w")
    response = client.post(f"{SWEEPS}/{sweep['id']}/cancel")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["counts"]["cancelled"] == 35 and body["counts"]["succeeded"] == 1
    with session_scope() as session:
        assert run_service.stopped_run_ids(session=session, run_ids=[runs[1]["id"]], worker="w") == {
            runs[1]["id"]
        }
        assert run_service.claim_runs(session=session, run_ids=[r["id"] for r in runs], worker="w") == []
    assert client.post(f"{SWEEPS}/{sweep['id']}/cancel").status_code == 409


def test_a_finished_sweep_does_not_cancel(client: TestClient) -> None:
    sweep = create(client, {**GRID, "parameters": {"depth": {"values": [1]}}, "repeats": 2})
    for run in sweep_runs(client, sweep["id"]):
        finish(run["id"], test_loss=0.1)
    response = client.post(f"{SWEEPS}/{sweep['id']}/cancel")
    assert response.status_code == 409 and "already finished" in response.json()["detail"]
    assert client.get(f"{SWEEPS}/{sweep['id']}").json()["status"] == "finished"


def test_bayes_sweep_grows_from_finished_results_up_to_run_cap(
    client: TestClient, sweepyard_env: dict[str, str]
) -> None:
    config = {
        "method": "bayes",
        "run_cap": 12,
        "repeats": 2,
        "seed": 3,
        "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1}},
    }
    sweep = create(client, config)
    var_dir = sweepyard_env["SWEEPYARD_VAR_DIR"]
    seen: set[int] = set()
    for _round in range(10):
        runs = [r for r in sweep_runs(client, sweep["id"]) if r["status"] == "queued"]
        if not runs:
            break
        for run in runs:
            seen.add(run["id"])
            finish(run["id"], test_loss=abs(np.log10(run["spec"]["lr"]) + 2))
            with session_scope() as session:
                for bundle in sweeps.advance_sweep(session=session, sweep_id=sweep["id"]):
                    assert all(run_id not in seen for run_id in bundle)
    final = client.get(f"{SWEEPS}/{sweep['id']}").json()
    assert final["counts"]["total"] == 12 and final["counts"]["succeeded"] == 12
    assert final["status"] == "finished"
    everything = sweep_runs(client, sweep["id"])
    lrs = {r["spec"]["lr"] for r in everything}
    assert len(lrs) == 6, "six configurations, each run with two seeds"
    assert sorted(r["spec"]["seed"] for r in everything) == sorted([0, 1] * 6)
    assert len(queued_messages(var_dir)) >= 1
    with session_scope() as session:
        assert sweeps.advance_sweep(session=session, sweep_id=sweep["id"]) == []


def record(run_id: int, values: dict[int, float]) -> None:
    with session_scope() as session:
        run_service.record_epochs(
            session=session,
            rows=[
                {
                    "run_id": run_id,
                    "epoch": e,
                    "train_loss": v,
                    "val_loss": v,
                    "best_val_loss": v,
                    "val_accuracy": None,
                }
                for e, v in values.items()
            ],
        )


def test_hyperband_prunes_the_run_that_lags_at_a_bracket(client: TestClient) -> None:
    config = {
        "method": "grid",
        "parameters": {"lr": {"values": [0.01, 0.02, 0.03, 0.04]}},
        "base": {"epochs": 20},
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
    }
    sweep = create(client, config)
    ids = [run["id"] for run in sorted(sweep_runs(client, sweep["id"]), key=lambda r: r["id"])]
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=ids, worker="w")
        assert pruning.pruning_brackets(session=session, sweep_id=sweep["id"], epochs=20) == [2, 4, 8, 16]
    record(ids[0], {1: 0.9, 2: 0.50})
    record(ids[1], {1: 0.9, 2: 0.40})
    record(ids[2], {1: 0.9, 2: 0.80})
    with session_scope() as session:
        assert not pruning.should_prune(session=session, sweep_id=sweep["id"], run_id=ids[1], epoch=2)
        assert pruning.should_prune(session=session, sweep_id=sweep["id"], run_id=ids[2], epoch=2)
        assert not pruning.should_prune(session=session, sweep_id=sweep["id"], run_id=ids[2], epoch=1), (
            "no bracket"
        )
        assert pruning.mark_pruned(session=session, run_id=ids[2])
        assert not pruning.mark_pruned(session=session, run_id=ids[2])
    read = client.get(f"/api/v1/runs/{ids[2]}").json()
    assert read["status"] == "pruned" and read["finished_at"] is not None
    assert client.get(f"/api/v1/runs/{ids[2]}/metrics").json()["epoch"] == [1, 2], "history kept"
