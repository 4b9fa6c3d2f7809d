"""Sweeps: planning their runs, reading their state, cancelling them, and growing bayes sweeps."""

import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.models import Run, RunStatus, Sweep, utcnow
from app.schemas import (
    BestRun,
    Goal,
    RunSpec,
    SweepConfig,
    SweepMethod,
    SweepPublic,
    SweepRunCounts,
    SweepsPublic,
)
from app.services import planning
from app.services.errors import Conflict, NotFound, Unprocessable
from app.services.runs import ACTIVE_STATUSES, create_run, make_bundles

Bundles = list[list[int]]


def accepted_config(sweep: Sweep) -> SweepConfig:
    return SweepConfig.model_validate(sweep.config)


def create_sweep(*, session: Session, config: SweepConfig) -> tuple[Sweep, Bundles]:
    """Write the sweep and its first runs in the caller's transaction; return the bundles to enqueue."""
    settings = get_settings()
    config = config.model_copy(
        update={"seed": config.seed if config.seed is not None else secrets.randbelow(2**31)}
    )
    wanted = planning.configurations_wanted(config)
    if (
        config.method is SweepMethod.grid
        and config.run_cap is None
        and planning.grid_size(config) > 1_000_000
    ):
        raise Unprocessable(f"the grid has {planning.grid_size(config)} configurations; give run_cap")
    if wanted * config.repeats > settings.max_sweep_runs:
        raise Unprocessable(
            f"the sweep would make {wanted} configurations x {config.repeats} repeats = "
            f"{wanted * config.repeats} runs, over the cap of {settings.max_sweep_runs} "
            "(SWEEPYARD_MAX_SWEEP_RUNS); set run_cap or sweep fewer values",
            loc=("body", "run_cap"),
        )
    first = min(wanted, settings.bayes_in_flight) if config.method is SweepMethod.bayes else wanted
    points = planning.plan(config, first)
    _check_sweep_budget(config, points, wanted)
    sweep = Sweep(
        name=config.name, method=config.method.value, config=config.model_dump(mode="json", exclude_none=True)
    )
    session.add(sweep)
    session.flush()
    return sweep, _add_runs(session, sweep, config, points, first_trial=0)


def _check_sweep_budget(config: SweepConfig, points: Sequence[dict[str, Any]], wanted: int) -> None:
    """The whole sweep's work; for bayes, the first configurations stand for the ones to come."""
    costs = []
    for point in points:
        try:
            costs.append(RunSpec.model_validate({**config.base, **point}).cost)
        except ValidationError:
            costs.append(0)  # _add_runs names the invalid configuration
    if not costs:
        return
    total = sum(costs) / len(costs) * wanted * config.repeats
    budget = get_settings().sweep_compute_budget
    if total > budget:
        raise Unprocessable(
            f"the sweep's work, n_train x epochs x parameters over its {wanted * config.repeats} runs, is "
            f"{total:.3g}: over the sweep compute budget of {budget:.3g} (SWEEPYARD_SWEEP_COMPUTE_BUDGET); "
            "sweep fewer or smaller runs"
        )


def _add_runs(
    session: Session, sweep: Sweep, config: SweepConfig, points: Sequence[dict[str, Any]], first_trial: int
) -> Bundles:
    created: list[tuple[int, RunSpec]] = []
    for offset, point in enumerate(points):
        fields = {**config.base, **point}
        for repeat in range(config.repeats):
            seed = int(fields.get("seed", 0)) + repeat
            try:
                spec = RunSpec.model_validate({**fields, "seed": seed})
            except ValidationError as exc:
                problem = "; ".join(str(error["msg"]) for error in exc.errors())
                raise Unprocessable(f"the configuration {point} is not a valid run: {problem}") from exc
            run = create_run(session=session, spec=spec, sweep_id=sweep.id, sweep_trial=first_trial + offset)
            created.append((run.id, spec))
    return make_bundles(created, get_settings().bundle_size)


def get_sweep(*, session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id} not found")
    return sweep


def _counts(session: Session, sweep_ids: list[int]) -> dict[int, SweepRunCounts]:
    rows = session.execute(
        select(Run.sweep_id, Run.status, func.count())
        .where(Run.sweep_id.in_(sweep_ids))
        .group_by(Run.sweep_id, Run.status)
    ).all()
    counts: dict[int | None, dict[str, int]] = defaultdict(dict)
    for sweep_id, status, count in rows:
        counts[sweep_id][status] = count
    return {
        sweep_id: SweepRunCounts(**counts[sweep_id], total=sum(counts[sweep_id].values()))
        for sweep_id in sweep_ids
    }


def metric_value(metric: str) -> Any:
    """The summary metric as a SQL expression (JSON extraction works on SQLite and PostgreSQL alike)."""
    return Run.summary[metric].as_float()


def _ranked(sweep: Sweep, config: SweepConfig, *columns: Any) -> Select[Any]:
    """The sweep's succeeded runs with a value of its metric, best first by its goal (ties by id)."""
    value = metric_value(config.metric.name)
    order = value.desc() if config.metric.goal is Goal.maximize else value.asc()
    return (
        select(*columns)
        .where(Run.sweep_id == sweep.id, Run.status == RunStatus.succeeded.value, value.is_not(None))
        .order_by(order, Run.id)
    )


def best_run(session: Session, sweep: Sweep, config: SweepConfig) -> BestRun | None:
    value = metric_value(config.metric.name)
    row = session.execute(_ranked(sweep, config, Run.id, Run.spec, value).limit(1)).first()
    if row is None:
        return None
    return BestRun(id=row[0], value=row[2], params={name: row[1].get(name) for name in config.parameters})


def best_run_ids(*, session: Session, sweep: Sweep, config: SweepConfig, limit: int) -> list[int]:
    """The sweep's best succeeded runs by its metric and goal, best first."""
    return list(session.scalars(_ranked(sweep, config, Run.id).limit(limit)))


def to_public(session: Session, sweep: Sweep, counts: SweepRunCounts) -> SweepPublic:
    config = accepted_config(sweep)
    if sweep.cancelled_at is not None:
        status = "cancelled"
    elif counts.queued + counts.running > 0:
        status = "running"
    elif (
        config.method is SweepMethod.bayes
        and counts.total < planning.configurations_wanted(config) * config.repeats
    ):
        status = "running"
    else:
        status = "finished"
    return SweepPublic(
        id=sweep.id,
        name=sweep.name,
        method=SweepMethod(sweep.method),
        status=status,
        config=sweep.config,
        counts=counts,
        best_run=best_run(session, sweep, config),
        created_at=sweep.created_at,
    )


def read_sweep(*, session: Session, sweep_id: int) -> SweepPublic:
    sweep = get_sweep(session=session, sweep_id=sweep_id)
    return to_public(session, sweep, _counts(session, [sweep.id])[sweep.id])


def list_sweeps(*, session: Session, limit: int, offset: int) -> SweepsPublic:
    total = session.scalar(select(func.count()).select_from(Sweep)) or 0
    sweeps = session.scalars(select(Sweep).order_by(Sweep.id.desc()).limit(limit).offset(offset)).all()
    counts = _counts(session, [sweep.id for sweep in sweeps])
    return SweepsPublic(data=[to_public(session, sweep, counts[sweep.id]) for sweep in sweeps], count=total)


def cancel_sweep(*, session: Session, sweep_id: int) -> SweepPublic:
    """Queued runs never start, running ones stop within an epoch, and a bayes sweep plans no more."""
    sweep = get_sweep(session=session, sweep_id=sweep_id)
    if sweep.cancelled_at is not None:
        raise Conflict(f"sweep {sweep_id} is already cancelled")
    if read_sweep(session=session, sweep_id=sweep_id).status == "finished":
        raise Conflict(f"sweep {sweep_id} has already finished; only a running sweep cancels")
    now = utcnow()
    sweep.cancelled_at = now
    session.execute(
        update(Run)
        .where(Run.sweep_id == sweep_id, Run.status.in_(ACTIVE_STATUSES))
        .values(status=RunStatus.cancelled.value, finished_at=now)
    )
    return read_sweep(session=session, sweep_id=sweep_id)


def bayes_sweep_ids(*, session: Session, sweep_ids: set[int]) -> set[int]:
    """The bayes sweeps among these: the ones that plan more runs as runs end."""
    if not sweep_ids:
        return set()
    query = select(Sweep.id).where(Sweep.id.in_(sweep_ids), Sweep.method == SweepMethod.bayes.value)
    return set(session.scalars(query))


def advance_sweep(*, session: Session, sweep_id: int) -> Bundles:
    """Give a bayes sweep its next configurations, told by what has finished. Returns bundles to enqueue
    after the commit. Safe to call from many workers at once: the sweep's row is locked first."""
    # Writing the row first takes its lock (a row lock on PostgreSQL, the write lock on SQLite), so two
    # workers finishing runs of one sweep never plan the same slots twice.
    locked = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.cancelled_at.is_(None))
        .values(name=Sweep.name)
        .returning(Sweep.id)
    ).first()
    sweep = session.get(Sweep, sweep_id)
    if locked is None or sweep is None or sweep.method != SweepMethod.bayes.value:
        return []
    config = accepted_config(sweep)
    value = metric_value(config.metric.name)
    rows = session.execute(
        select(Run.sweep_trial, Run.status, Run.spec, value).where(Run.sweep_id == sweep_id)
    ).all()
    trials: dict[int, list[tuple[str, dict[str, Any], float | None]]] = defaultdict(list)
    for trial, status, spec, metric in rows:
        trials[trial].append((status, spec, metric))
    in_flight = sum(any(status in ACTIVE_STATUSES for status, _, _ in runs) for runs in trials.values())
    to_plan = min(
        get_settings().bayes_in_flight - in_flight, planning.configurations_wanted(config) - len(trials)
    )
    if to_plan <= 0:
        return []
    history = [_trial_result(config, runs) for _, runs in sorted(trials.items())]
    return _add_runs(session, sweep, config, planning.plan(config, to_plan, history), first_trial=len(trials))


def _trial_result(
    config: SweepConfig, runs: list[tuple[str, dict[str, Any], float | None]]
) -> planning.TrialResult:
    params = {name: runs[0][1][name] for name in planning.sampled_parameters(config)}
    finished = all(status not in ACTIVE_STATUSES for status, _, _ in runs)
    values = [
        metric for status, _, metric in runs if status == RunStatus.succeeded.value and metric is not None
    ]
    return planning.TrialResult(params, sum(values) / len(values) if values else None, finished)
