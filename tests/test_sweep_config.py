"""POST /api/v1/sweeps: W&B configs as they are, every bad config named, and the runs each plan makes."""

from collections import Counter, defaultdict
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import get_settings
from tests.helpers import queued_messages

SWEEPS = "/api/v1/sweeps"
RUNS = "/api/v1/runs"

# W&B's documented examples, with Sweepyard's run-spec fields as the parameter names.
GRID_YAML = """\
program: train.py
method: grid
project: xor-study
entity: my-team
parameters:
  batch_size:
    values: [16, 32, 64]
  optimizer:
    values: ["adam", "sgd"]
  epochs:
    value: 5
command:
  - ${env}
  - python
  - ${program}
  - ${args}
"""

RANDOM: dict[str, Any] = {
    "program": "train.py",
    "method": "random",
    "name": "sweep",
    "metric": {"goal": "minimize", "name": "val_loss"},
    "early_terminate": {"type": "hyperband", "min_iter": 3},
    "parameters": {
        "batch_size": {"distribution": "q_log_uniform_values", "max": 256, "min": 32, "q": 8},
        "lr": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.1},
        "noise": {"distribution": "uniform", "min": 0, "max": 0.5},
        "depth": {"distribution": "int_uniform", "min": 1, "max": 4},
        "optimizer": {"distribution": "categorical", "values": ["adam", "sgd"]},
        "epochs": {"value": 5},
    },
    "run_cap": 20,
}

BAYES_YAML = """\
program: train.py
method: bayes
metric:
  name: val_loss
  goal: minimize
early_terminate:
  type: hyperband
  min_iter: 3
parameters:
  lr:
    min: 0.0001
    max: 0.1
  optimizer:
    values: ["adam", "sgd"]
run_cap: 6
"""


def post(client: TestClient, body: dict[str, Any] | str, content_type: str = "application/json") -> Any:
    if isinstance(body, str):
        return client.post(SWEEPS, content=body, headers={"Content-Type": content_type})
    return client.post(SWEEPS, json=body)


def create(client: TestClient, body: dict[str, Any] | str, content_type: str = "application/json") -> Any:
    response = post(client, body, content_type)
    assert response.status_code == 201, response.text
    return response.json()


def specs_of(client: TestClient, sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """The specs of the sweep's runs, by run id."""
    response = client.get(RUNS, params={"sweep_id": sweep["id"], "limit": 1000})
    assert response.status_code == 200, response.text
    return [run["spec"] for run in sorted(response.json()["data"], key=lambda run: run["id"])]


def rejection(response: Any) -> str:
    """Every error of a 422, one `loc: msg` line each."""
    assert response.status_code == 422, response.text
    return "\n".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in response.json()["detail"])


def test_wandb_grid_config_as_yaml(client: TestClient) -> None:
    sweep = create(client, GRID_YAML, "application/yaml")
    config = sweep["config"]
    assert config["metric"] == {"name": "test_loss", "goal": "minimize"}
    assert config["repeats"] == 1
    assert isinstance(config["seed"], int) and 0 <= config["seed"] < 2**31
    assert config["parameters"]["batch_size"] == {"values": [16, 32, 64], "distribution": "categorical"}
    assert config["command"] == ["${env}", "python", "${program}", "${args}"]
    assert (config["program"], config["project"], config["entity"]) == ("train.py", "xor-study", "my-team")
    assert sweep["method"] == "grid" and sweep["status"] == "running"
    specs = specs_of(client, sweep)
    assert sweep["counts"]["total"] == len(specs) == 6
    assert sorted((s["batch_size"], s["optimizer"]) for s in specs) == sorted(
        (b, o) for b in (16, 32, 64) for o in ("adam", "sgd")
    )
    assert {s["epochs"] for s in specs} == {5}


def test_wandb_random_config_as_json(client: TestClient) -> None:
    sweep = create(client, RANDOM)
    config = sweep["config"]
    assert config["metric"] == {"name": "val_loss", "goal": "minimize"}
    assert config["early_terminate"] == {"type": "hyperband", "min_iter": 3, "eta": 3, "strict": False}
    assert config["repeats"] == 1 and isinstance(config["seed"], int)
    assert config["parameters"]["epochs"] == {"value": 5, "distribution": "constant"}
    assert sweep["name"] == "sweep" and sweep["method"] == "random"
    assert sweep["counts"]["total"] == len(specs_of(client, sweep)) == 20


def test_wandb_bayes_config_as_yaml_starts_the_first_configurations(client: TestClient) -> None:
    sweep = create(client, BAYES_YAML, "application/x-yaml; charset=utf-8")
    config = sweep["config"]
    assert config["metric"] == {"name": "val_loss", "goal": "minimize"}
    assert config["early_terminate"]["min_iter"] == 3
    assert config["parameters"]["lr"] == {"distribution": "uniform", "min": 0.0001, "max": 0.1}
    assert config["run_cap"] == 6 and config["repeats"] == 1 and isinstance(config["seed"], int)
    specs = specs_of(client, sweep)
    assert sweep["counts"]["queued"] == len(specs) == 4
    assert all(0.0001 <= s["lr"] <= 0.1 and s["optimizer"] in ("adam", "sgd") for s in specs)


GRID_DEPTH = {"method": "grid", "parameters": {"depth": {"values": [1, 2]}}}
LR_UNIFORM = {"distribution": "uniform", "min": 0.001, "max": 0.1}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"method": "grid", "parameters": {"learning_rate": {"values": [0.1]}}},
            ["parameters.learning_rate is not a run-spec field"],
        ),
        (
            {"method": "grid", "parameters": {"depth": {"values": [1, 17]}}},
            ["parameters.depth: value 17", "less than or equal to 16"],
        ),
        (
            {"method": "random", "run_cap": 5, "parameters": {"lr": {**LR_UNIFORM, "max": 20}}},
            ["parameters.lr", "less than or equal to 10"],
        ),
        ({"method": "grid", "parameters": {"lr": LR_UNIFORM}}, ["grid needs finite values", "parameters.lr"]),
        ({"method": "random", "parameters": {"lr": LR_UNIFORM}}, ["method random needs `run_cap`"]),
        ({"method": "bayes", "parameters": {"lr": LR_UNIFORM}}, ["method bayes needs `run_cap`"]),
        (
            {
                "method": "random",
                "run_cap": 5,
                "parameters": {"lr": {**LR_UNIFORM, "distribution": "normal"}},
            },
            ["body.parameters.lr.distribution:"],
        ),
        ({**GRID_DEPTH, "method": "hyperopt"}, ["body.method:"]),
        ({**GRID_DEPTH, "max_runs": 5}, ["body.max_runs: Extra inputs are not permitted"]),
        ({**GRID_DEPTH, "base": {"learning_rate": 0.1}}, ["base.learning_rate is not a run-spec field"]),
        ({**GRID_DEPTH, "base": {"width": 2000}}, ["base.width", "less than or equal to 1024"]),
        ({**GRID_DEPTH, "base": {"depth": 2}}, ["depth is both in `base` and in `parameters`"]),
        ({**GRID_DEPTH, "repeats": 3, "run_cap": 2}, ["run_cap 2 is below repeats 3"]),
        (
            {"method": "random", "run_cap": 5, "parameters": {"lr": {**LR_UNIFORM, "min": 0.1}}},
            ["body.parameters.lr", "`min` (0.1) must be below `max` (0.1)"],
        ),
        (
            {
                "method": "random",
                "run_cap": 5,
                "parameters": {"depth": {"distribution": "uniform", "min": 1, "max": 4}},
            },
            ["parameters.depth is an integer field", "not uniform"],
        ),
        (
            {"method": "grid", "parameters": {"optimizer": {"distribution": "categorical"}}},
            ["body.parameters.optimizer", "categorical needs `values`"],
        ),
        (
            {
                "method": "random",
                "run_cap": 5,
                "parameters": {"batch_size": {"distribution": "q_log_uniform_values", "min": 32, "max": 256}},
            },
            ["body.parameters.batch_size", "q_log_uniform_values needs `q`"],
        ),
        ({**GRID_DEPTH, "early_terminate": {"type": "asha", "min_iter": 3}}, ["body.early_terminate.type:"]),
        ({**GRID_DEPTH, "early_terminate": {"type": "hyperband"}}, ["body.early_terminate", "`min_iter`"]),
        (
            {**GRID_DEPTH, "early_terminate": {"type": "hyperband", "max_iter": 27}},
            ["body.early_terminate", "`max_iter` with `s`"],
        ),
    ],
    ids=[
        *("unknown-parameter", "depth-17", "lr-over-10", "grid-continuous", "random-no-cap", "bayes-no-cap"),
        *("unknown-distribution", "unknown-method", "unknown-key", "base-unknown", "base-out-of-range"),
        *("base-and-parameter", "cap-below-repeats", "min-not-below-max", "int-field-uniform"),
        *("categorical-no-values", "q-without-q", "not-hyperband", "no-min-iter", "max-iter-no-s"),
    ],
)
def test_bad_config_is_named(client: TestClient, body: dict[str, Any], words: list[str]) -> None:
    text = rejection(post(client, body))
    for word in words:
        assert word in text
    assert client.get(SWEEPS).json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        ("method: [grid\n", "application/yaml", ["body: the body is not valid YAML"]),
        ('{"method": "grid",', "application/json", ["body: the body is not valid JSON"]),
        ("- method: grid\n- method: random\n", "application/yaml", ["body:", "valid dictionary"]),
    ],
    ids=["invalid-yaml", "invalid-json", "yaml-list"],
)
def test_bad_body_is_named(client: TestClient, body: str, content_type: str, words: list[str]) -> None:
    text = rejection(post(client, body, content_type))
    for word in words:
        assert word in text


def test_grid_over_the_run_cap_setting(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPYARD_MAX_SWEEP_RUNS", "50")
    get_settings.cache_clear()
    grid: dict[str, Any] = {
        "method": "grid",
        "parameters": {"depth": {"values": list(range(10))}, "width": {"values": list(range(1, 11))}},
    }
    response = post(client, grid)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "run_cap"]
    assert "100 runs" in error["msg"] and "cap of 50" in error["msg"]
    assert create(client, {**grid, "run_cap": 50})["counts"]["total"] == 50


def test_config_valid_field_by_field_but_not_as_a_run(client: TestClient) -> None:
    body = {"method": "grid", "base": {"n_samples": 100}, "parameters": {"batch_size": {"values": [32, 200]}}}
    text = rejection(post(client, body))
    assert "not a valid run" in text and "batch_size 200" in text
    assert client.get(SWEEPS).json()["count"] == 0
    assert client.get(RUNS).json()["count"] == 0


@pytest.mark.parametrize(("base", "first_seed"), [({}, 0), ({"seed": 10}, 10)])
def test_grid_makes_every_configuration_repeats_times(
    client: TestClient, base: dict[str, Any], first_seed: int
) -> None:
    parameters = {"depth": {"values": [0, 1, 2, 3]}, "width": {"values": [1, 2, 3]}}
    sweep = create(client, {"method": "grid", "parameters": parameters, "base": base, "repeats": 5})
    specs = specs_of(client, sweep)
    assert len(specs) == sweep["counts"]["total"] == 60
    seeds: dict[tuple[int, int], list[int]] = defaultdict(list)
    for spec in specs:
        seeds[(spec["depth"], spec["width"])].append(spec["seed"])
    assert sorted(seeds) == [(d, w) for d in range(4) for w in (1, 2, 3)]
    for config_seeds in seeds.values():
        assert sorted(config_seeds) == list(range(first_seed, first_seed + 5))


def test_run_cap_on_a_grid_keeps_whole_configurations(client: TestClient) -> None:
    parameters = {"depth": {"values": [0, 1, 2, 3]}, "width": {"values": [1, 2, 3]}}
    sweep = create(client, {"method": "grid", "parameters": parameters, "repeats": 2, "run_cap": 9})
    specs = specs_of(client, sweep)
    assert len(specs) == 8
    per_configuration = Counter((s["depth"], s["width"]) for s in specs)
    assert len(per_configuration) == 4 and set(per_configuration.values()) == {2}
    assert sorted(s["seed"] for s in specs) == [0, 0, 0, 0, 1, 1, 1, 1]


def test_random_sweep_is_reproducible_from_its_seed(client: TestClient) -> None:
    first = specs_of(client, create(client, {**RANDOM, "seed": 7}))
    again = specs_of(client, create(client, {**RANDOM, "seed": 7}))
    other = specs_of(client, create(client, {**RANDOM, "seed": 8}))
    assert len(first) == 20
    assert first == again
    assert first != other


def test_random_samples_lie_in_their_ranges(client: TestClient) -> None:
    specs = specs_of(client, create(client, {**RANDOM, "run_cap": 50, "seed": 3}))
    assert len(specs) == 50
    for spec in specs:
        assert type(spec["batch_size"]) is int and spec["batch_size"] % 8 == 0
        assert 32 <= spec["batch_size"] <= 256
        assert 0.0001 <= spec["lr"] <= 0.1
        assert 0 <= spec["noise"] <= 0.5
        assert type(spec["depth"]) is int and 1 <= spec["depth"] <= 4
        assert spec["optimizer"] in ("adam", "sgd")
        assert spec["epochs"] == 5 and spec["seed"] == 0
    # Sampled, not constant: every distribution gave more than one value.
    for name in ("batch_size", "lr", "noise", "depth", "optimizer"):
        assert len({spec[name] for spec in specs}) > 1, name


def test_bayes_sweep_starts_with_the_configurations_in_flight(client: TestClient) -> None:
    body = {"method": "bayes", "run_cap": 10, "repeats": 2, "seed": 1, "parameters": {"lr": LR_UNIFORM}}
    sweep = create(client, body)
    specs = specs_of(client, sweep)
    assert len(specs) == sweep["counts"]["queued"] == 8
    assert sweep["status"] == "running"
    per_lr = Counter(spec["lr"] for spec in specs)
    assert len(per_lr) == 4 and set(per_lr.values()) == {2}


def bundles(client: TestClient, env: dict[str, str]) -> list[list[int]]:
    body = {
        "method": "grid",
        "parameters": {"depth": {"values": [1, 2]}, "lr": {"values": [0.01, 0.1]}},
        "repeats": 3,
    }
    sweep = create(client, body)
    runs = client.get(RUNS, params={"sweep_id": sweep["id"], "limit": 1000}).json()["data"]
    depth_of = {run["id"]: run["spec"]["depth"] for run in runs}
    assert len(depth_of) == 12
    messages = [message["run_ids"] for message in queued_messages(env["SWEEPYARD_VAR_DIR"])]
    assert sorted(run_id for ids in messages for run_id in ids) == sorted(depth_of)
    for ids in messages:
        assert len({depth_of[run_id] for run_id in ids}) == 1
    return messages


def test_sweep_bundles_runs_of_one_architecture(client: TestClient, sweepyard_env: dict[str, str]) -> None:
    assert sorted(map(len, bundles(client, sweepyard_env))) == [6, 6]


def test_bundle_size_is_a_setting(
    client: TestClient, sweepyard_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPYARD_BUNDLE_SIZE", "4")
    get_settings.cache_clear()
    assert Counter(map(len, bundles(client, sweepyard_env))) == Counter({4: 2, 2: 2})


def test_quantised_samples_stay_inside_their_range(client: TestClient) -> None:
    # Rounding to a multiple of q alone could give depth 18 from [0, 16]; every seed must plan valid runs.
    for seed in range(16):
        body = {
            "method": "random",
            "run_cap": 4,
            "seed": seed,
            "parameters": {"depth": {"distribution": "q_uniform", "min": 0, "max": 16, "q": 6}},
        }
        response = client.post("/api/v1/sweeps", json=body)
        assert response.status_code == 201, response.text
        runs = client.get("/api/v1/runs", params={"sweep_id": response.json()["id"]}).json()["data"]
        assert {run["spec"]["depth"] for run in runs} <= {0, 6, 12}


def test_a_q_with_no_multiple_in_range_is_refused(client: TestClient) -> None:
    body = {
        "method": "random",
        "run_cap": 2,
        "parameters": {"lr": {"distribution": "q_uniform", "min": 0.01, "max": 0.02, "q": 0.05}},
    }
    response = client.post("/api/v1/sweeps", json=body)
    assert response.status_code == 422
    assert "no multiple of q = 0.05" in response.text


def test_a_sweep_over_the_compute_budget_is_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPYARD_SWEEP_COMPUTE_BUDGET", "1e8")
    get_settings.cache_clear()
    # 10 runs of the default spec: 10 x 1200 x 100 x 13 = 1.56e7, fine; 100 runs would be 1.56e8.
    small = {"method": "grid", "parameters": {"seed": {"values": list(range(10))}}}
    assert client.post("/api/v1/sweeps", json=small).status_code == 201
    big = {"method": "random", "run_cap": 100, "parameters": {"lr": {"min": 0.001, "max": 0.1}}}
    response = client.post("/api/v1/sweeps", json=big)
    assert response.status_code == 422
    assert "1.56e+08: over the sweep compute budget of 1e+08" in response.json()["detail"][0]["msg"]
