"""The files under examples/ are what README tells newcomers to submit: each must be accepted as it is."""

from pathlib import Path

import pytest
import yaml

from app.schemas import RunCreate, SweepConfig
from app.services import planning

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SWEEPS = ["depth_width.yaml", "random_search.yaml"]
RUNS = ["underfit.yaml", "good_fit.yaml", "overfit.yaml"]


def test_every_example_is_listed_here() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.yaml")) == sorted(SWEEPS + RUNS)


@pytest.mark.parametrize("name", RUNS)
def test_run_examples_are_valid_specs(name: str) -> None:
    spec = RunCreate.model_validate(yaml.safe_load((EXAMPLES / name).read_text()))
    assert spec.dataset == "regression_1d" and spec.name == name.removesuffix(".yaml").replace("_", "-")


def test_the_fitting_examples_differ_only_in_the_model() -> None:
    specs = [yaml.safe_load((EXAMPLES / name).read_text()) for name in RUNS]
    model = {"name", "depth", "width", "epochs", "lr"}
    shared = [{key: value for key, value in spec.items() if key not in model} for spec in specs]
    assert shared[0] == shared[1] == shared[2]


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_examples_are_valid_configs(name: str) -> None:
    config = SweepConfig.model_validate(yaml.safe_load((EXAMPLES / name).read_text()))
    assert config.metric.name == "test_loss"
    assert planning.configurations_wanted(config) * config.repeats <= 100
