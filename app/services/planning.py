"""From a sweep config to run configurations, with Optuna's samplers doing the choosing.

Optuna's studies live in memory only: the project's tables are the truth, and a study is rebuilt from
them whenever a sampler needs the history (bayes) or a pruner needs the other runs (early_terminate).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from app.schemas import (
    INTEGER_FIELDS,
    Distribution,
    Goal,
    ParameterConfig,
    SweepConfig,
    SweepMethod,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

LOG_DISTRIBUTIONS = frozenset(
    {
        Distribution.log_uniform,
        Distribution.log_uniform_values,
        Distribution.q_log_uniform,
        Distribution.q_log_uniform_values,
        Distribution.inv_log_uniform,
        Distribution.inv_log_uniform_values,
    }
)


class PlanError(ValueError):
    """The config is valid on its own, but what it asks for cannot be planned (too many runs, say)."""


@dataclass(frozen=True)
class TrialResult:
    """A configuration the sampler has seen: its parameters and, once finished, its value."""

    params: dict[str, Any]
    value: float | None
    finished: bool


def sampled_parameters(config: SweepConfig) -> dict[str, ParameterConfig]:
    return {
        name: parameter
        for name, parameter in config.parameters.items()
        if parameter.distribution is not Distribution.constant
    }


def varying_parameters(config: SweepConfig) -> list[str]:
    """Parameters that take more than one value across the sweep, in config order."""
    return [
        name
        for name, parameter in sampled_parameters(config).items()
        if parameter.distribution is not Distribution.categorical
        or len(set(map(repr, parameter.values or []))) > 1
    ]


def optuna_distribution(parameter: ParameterConfig) -> BaseDistribution:
    if parameter.distribution is Distribution.categorical:
        return CategoricalDistribution(parameter.values or [])
    low, high = parameter.candidate_values()
    if parameter.distribution is Distribution.int_uniform:
        return IntDistribution(int(low), int(high))
    return FloatDistribution(low, high, log=parameter.distribution in LOG_DISTRIBUTIONS)


def spec_value(name: str, parameter: ParameterConfig, sampled: Any) -> Any:
    """The run-spec value of a sampled point: for the q_ distributions, the nearest multiple of q inside
    the range (rounding alone could step outside it, where the run spec was never checked)."""
    if parameter.q is not None and str(parameter.distribution).startswith("q_"):
        low, high = parameter.candidate_values()
        steps = round(sampled / parameter.q)
        steps = min(max(steps, math.ceil(low / parameter.q - 1e-9)), math.floor(high / parameter.q + 1e-9))
        sampled = round(steps * parameter.q, 12)
    return int(sampled) if name in INTEGER_FIELDS and isinstance(sampled, float) else sampled


def grid_size(config: SweepConfig) -> int:
    return math.prod(len(p.values or [p.value]) for p in config.parameters.values())


def configurations_wanted(config: SweepConfig) -> int:
    """How many configurations (each run `repeats` times) the sweep makes in all."""
    if config.method is SweepMethod.grid:
        size = grid_size(config)
        return size if config.run_cap is None else min(size, config.run_cap // config.repeats)
    assert config.run_cap is not None
    return config.run_cap // config.repeats


def _study(config: SweepConfig, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    direction = StudyDirection.MAXIMIZE if config.metric.goal is Goal.maximize else StudyDirection.MINIMIZE
    return optuna.create_study(sampler=sampler, direction=direction)


def plan(config: SweepConfig, count: int, history: Sequence[TrialResult] = ()) -> list[dict[str, Any]]:
    """The next `count` configurations: spec values of every swept parameter, constants included."""
    assert config.seed is not None, "an accepted config always has its seed"
    sampled = sampled_parameters(config)
    constants = {name: p.value for name, p in config.parameters.items() if name not in sampled}
    distributions = {name: optuna_distribution(p) for name, p in sampled.items()}
    points: list[dict[str, Any]] = []

    if config.method is SweepMethod.grid:
        space = {name: list(p.values or []) for name, p in sampled.items()}
        study = _study(config, optuna.samplers.GridSampler(space, seed=config.seed))
        # Asked trials stay running, and the grid sampler never hands out a running point twice.
        points = [study.ask(distributions).params for _ in range(count)]
    elif config.method is SweepMethod.random:
        study = _study(config, optuna.samplers.RandomSampler(seed=config.seed))
        points = [study.ask(distributions).params for _ in range(count)]
    else:
        # Seeded by how much it has seen, so the same history always gives the same suggestions.
        sampler = optuna.samplers.TPESampler(seed=config.seed + len(history), constant_liar=True)
        study = _study(config, sampler)
        study.add_trials([_as_trial(result, distributions) for result in history])
        points = [study.ask(distributions).params for _ in range(count)]

    return [
        {**constants, **{name: spec_value(name, sampled[name], value) for name, value in point.items()}}
        for point in points
    ]


def _as_trial(result: TrialResult, distributions: dict[str, BaseDistribution]) -> optuna.trial.FrozenTrial:
    params = {name: _clip(result.params[name], d) for name, d in distributions.items()}
    if not result.finished:
        return create_trial(state=TrialState.RUNNING, params=params, distributions=distributions)
    if result.value is None or not math.isfinite(result.value):
        return create_trial(state=TrialState.FAIL, params=params, distributions=distributions)
    return create_trial(params=params, distributions=distributions, value=result.value)


def _clip(value: Any, distribution: BaseDistribution) -> Any:
    # A quantised value may sit a hair outside the sampled range.
    if isinstance(distribution, FloatDistribution | IntDistribution):
        return min(max(value, distribution.low), distribution.high)
    return value
