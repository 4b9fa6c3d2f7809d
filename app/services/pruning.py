"""early_terminate: W&B's hyperband brackets, decided by Optuna's successive-halving pruner.

At each bracket epoch (min_iter x eta^k) a run is compared with every run of its sweep that reached the
same epoch; unless it is among the best 1/eta of them, it stops and ends as `pruned`, its history kept.
The pruner's state (each run's value at each bracket) is rebuilt from the epoch_metrics table each time.
"""

from collections import defaultdict

import optuna
from optuna.pruners import SuccessiveHalvingPruner
from optuna.trial import TrialState, create_trial
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import EpochMetric, Run, RunStatus, Sweep, utcnow
from app.schemas import EarlyTerminate, Goal, MetricKey, SweepConfig

# The per-epoch metric a bracket compares: the sweep's own metric when it is recorded every epoch.
EPOCH_METRICS = {key.value for key in MetricKey}


def pruning_brackets(*, session: Session, sweep_id: int, epochs: int) -> list[int]:
    """The epochs at which a run of this sweep is checked (none without early_terminate)."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or "early_terminate" not in sweep.config:
        return []
    return EarlyTerminate.model_validate(sweep.config["early_terminate"]).brackets(epochs)


def monitored(config: SweepConfig) -> tuple[str, Goal]:
    if config.metric.name.value in EPOCH_METRICS:
        return config.metric.name.value, config.metric.goal
    return MetricKey.val_loss.value, Goal.minimize


def should_prune(*, session: Session, sweep_id: int, run_id: int, epoch: int) -> bool:
    """Whether this run, which has just recorded `epoch`, lags the others at this bracket."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or "early_terminate" not in sweep.config:
        return False
    config = SweepConfig.model_validate(sweep.config)
    assert config.early_terminate is not None
    brackets = config.early_terminate.brackets(epoch + 1)
    if epoch not in brackets:
        return False
    metric, goal = monitored(config)
    column = getattr(EpochMetric, metric)
    rows = session.execute(
        select(EpochMetric.run_id, EpochMetric.epoch, column)
        .join(Run, Run.id == EpochMetric.run_id)
        .where(Run.sweep_id == sweep_id, EpochMetric.epoch.in_(brackets))
    ).all()
    values: dict[int, dict[int, float]] = defaultdict(dict)
    for other_id, other_epoch, value in rows:
        if value is not None:
            values[other_id][other_epoch] = value
    if epoch not in values.get(run_id, {}):
        return False

    def completed_rungs(history: dict[int, float], upto: int) -> dict[str, float]:
        attrs = {}
        for rung, bracket in enumerate(brackets[:upto]):
            if bracket not in history:
                break
            attrs[f"completed_rung_{rung}"] = history[bracket]
        return attrs

    study = optuna.create_study(direction="maximize" if goal is Goal.maximize else "minimize")
    others = [
        create_trial(value=history[max(history)], system_attrs=completed_rungs(history, len(brackets)))
        for other_id, history in sorted(values.items())
        if other_id != run_id
    ]
    study.add_trials(others)
    rung = brackets.index(epoch)
    study.add_trial(
        create_trial(
            state=TrialState.RUNNING,
            intermediate_values={epoch: values[run_id][epoch]},
            system_attrs=completed_rungs(values[run_id], rung),
        )
    )
    pruner = SuccessiveHalvingPruner(
        min_resource=brackets[0], reduction_factor=config.early_terminate.eta, min_early_stopping_rate=0
    )
    return pruner.prune(study, study.trials[-1])


def mark_pruned(*, session: Session, run_id: int) -> bool:
    """End a running run as pruned; its worker sees it at the next epoch. False if it already ended."""
    pruned = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.running.value)
        .values(status=RunStatus.pruned.value, finished_at=utcnow())
        .returning(Run.id)
    ).first()
    return pruned is not None
