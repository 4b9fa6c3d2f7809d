"""Hostile input: schemathesis drives every operation of /openapi.json (seeded, a few hundred cases) and
hypothesis probes spec and sweep validation. No 5xx, every response as documented."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis.checks import positive_data_acceptance

from app.schemas import RunSpec, SweepConfig, field_problem
from tests.conftest import reset_caches


@pytest.fixture
def api_schema(sweepyard_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from app.main import create_app

    monkeypatch.setenv("SWEEPYARD_MAX_SWEEP_RUNS", "40")  # each generated sweep stays small
    reset_caches()
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app())


def test_every_operation_answers_as_documented(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    cases = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            nonlocal cases
            cases += 1
            # Cross-field rules (batch_size <= n_train, the compute budget) cannot be written in JSON
            # Schema, so a schema-valid body may rightly get 422: that one check does not apply.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        call()
    assert cases >= 200, f"only {cases} cases ran"


SPEC_FIELDS = {
    "n_samples": st.integers(-10, 2_000_000),
    "depth": st.integers(-2, 20),
    "width": st.integers(-2, 2000),
    "epochs": st.integers(-1, 20_000),
    "batch_size": st.integers(-1, 2_000_000),
    "lr": st.floats(allow_nan=True, allow_infinity=True),
    "noise": st.floats(allow_nan=True, allow_infinity=True),
    "val_fraction": st.floats(-1, 2),
    "test_fraction": st.floats(-1, 2),
    "seed": st.integers(-5, 2**32),
}


@given(st.fixed_dictionaries({}, optional=SPEC_FIELDS))
@settings(max_examples=300, derandomize=True, deadline=None)
def test_an_accepted_spec_is_always_trainable(fields: dict[str, Any]) -> None:
    try:
        spec = RunSpec.model_validate(fields)
    except ValidationError:
        return
    sizes = spec.split_sizes
    assert sizes.train >= 1 and sizes.val >= 1 and sizes.test >= 1
    assert sizes.train + sizes.val + sizes.test == spec.n_samples
    assert 1 <= spec.batch_size <= sizes.train
    assert 0 < spec.lr <= 10 and 0 <= spec.noise <= 10
    assert spec.cost <= 1e12


PARAMETER = st.one_of(
    st.fixed_dictionaries(
        {
            "values": st.lists(
                st.one_of(
                    st.integers(-5, 3000), st.floats(allow_nan=False), st.sampled_from(["tanh", "adam", "x"])
                ),
                max_size=4,
            )
        }
    ),
    st.fixed_dictionaries(
        {"min": st.floats(-10, 10), "max": st.floats(-10, 10)},
        optional={
            "distribution": st.sampled_from(
                ["uniform", "log_uniform_values", "q_uniform", "int_uniform", "normal"]
            ),
            "q": st.floats(0.001, 5),
        },
    ),
    st.fixed_dictionaries({"value": st.one_of(st.integers(-5, 50), st.floats(allow_nan=False))}),
)


@given(
    st.fixed_dictionaries(
        {
            "method": st.sampled_from(["grid", "random", "bayes", "hyper"]),
            "parameters": st.dictionaries(
                st.sampled_from(["depth", "width", "lr", "noise", "batch_size", "seedz"]),
                PARAMETER,
                max_size=3,
            ),
        },
        optional={"run_cap": st.integers(-1, 50), "repeats": st.integers(0, 5)},
    )
)
@settings(max_examples=300, derandomize=True, deadline=None)
def test_sweep_validation_accepts_only_what_it_can_plan(config: dict[str, Any]) -> None:
    from app.services import planning

    try:
        accepted = SweepConfig.model_validate({**config, "seed": 1})
    except ValidationError:
        return
    assert accepted.method.value in ("grid", "random", "bayes")
    wanted = planning.configurations_wanted(accepted)
    assert wanted >= 0
    points = planning.plan(accepted, min(wanted, 5))
    for point in points:
        assert set(point) == set(accepted.parameters)
        for name, value in point.items():
            # Every value a sweep plans passes the run spec's own rule for that field.
            assert field_problem(name, value, accepted.base) is None, (name, value)
