"""Which swept parameter mattered: Optuna's PED-ANOVA importance plus each parameter's correlation."""

import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import create_trial
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Run, RunStatus
from app.schemas import Goal, ParameterImportance, SummaryMetric, SweepImportance
from app.services import planning
from app.services.sweeps import accepted_config, get_sweep, metric_value

# PED-ANOVA: fast (milliseconds for thousands of runs) and needs no model fitting; it measures how much
# each parameter's distribution in the best runs differs from its distribution over all runs.
EVALUATOR = "optuna.importance.PedAnovaImportanceEvaluator (top 10% of runs against all)"


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _distribution(values: list[Any]) -> BaseDistribution:
    if _numeric(values):
        return FloatDistribution(float(min(values)), float(max(values)))
    return CategoricalDistribution(sorted({str(v) for v in values}))


def _correlation(xs: list[Any], ys: list[float]) -> float | None:
    if len(xs) < 2 or not _numeric(xs):
        return None
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def sweep_importance(*, session: Session, sweep_id: int, metric: SummaryMetric | None) -> SweepImportance:
    sweep = get_sweep(session=session, sweep_id=sweep_id)
    config = accepted_config(sweep)
    metric = metric or config.metric.name
    goal = config.metric.goal if metric == config.metric.name else Goal.minimize
    names = planning.varying_parameters(config)
    value = metric_value(metric)
    rows = session.execute(
        select(Run.spec, value).where(
            Run.sweep_id == sweep_id, Run.status == RunStatus.succeeded.value, value.is_not(None)
        )
    ).all()
    points = [({name: spec[name] for name in names}, float(v)) for spec, v in rows if math.isfinite(v)]
    columns = {name: [params[name] for params, _ in points] for name in names}
    targets = [v for _, v in points]
    # A parameter needs two distinct values among the finished runs to be judged.
    judged = [name for name in names if len({repr(v) for v in columns[name]}) > 1]

    importances: dict[str, float] = {}
    if judged and len(points) >= 2:
        distributions = {name: _distribution(columns[name]) for name in judged}
        numeric = {name: _numeric(columns[name]) for name in judged}
        study = optuna.create_study(direction="maximize" if goal is Goal.maximize else "minimize")
        study.add_trials(
            [
                create_trial(
                    params={name: params[name] if numeric[name] else str(params[name]) for name in judged},
                    distributions=distributions,
                    value=target,
                )
                for params, target in points
            ]
        )
        raw = optuna.importance.get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(), params=judged, normalize=True
        )
        importances = {name: float(score) for name, score in raw.items()}

    parameters = [
        ParameterImportance(
            name=name, importance=importances.get(name, 0.0), correlation=_correlation(columns[name], targets)
        )
        for name in names
    ]
    parameters.sort(key=lambda p: -p.importance)
    return SweepImportance(
        sweep_id=sweep_id,
        metric=metric,
        goal=goal,
        evaluator=EVALUATOR,
        n_runs=len(points),
        parameters=parameters,
    )
