"""Runs: creating, reading and cancelling them for the API; claiming and recording them for workers.

Every function takes the session as a keyword argument and leaves committing to session_scope().
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import Checkpoint, EpochMetric, Run, RunArtifact, RunStatus, RunTag, utcnow
from app.schemas import (
    MetricKey,
    MetricsPublic,
    PredictionsPublic,
    RunCreate,
    RunSpec,
)
from app.services import run_views
from app.services.errors import Conflict, NotFound

PREDICTIONS_ARTIFACT = "predictions"
ACTIVE_STATUSES = (RunStatus.queued.value, RunStatus.running.value)


# --- the API side -------------------------------------------------------------------------------------


def create_run(
    *,
    session: Session,
    spec: RunSpec,
    name: str | None = None,
    tags: Sequence[str] = (),
    sweep_id: int | None = None,
    sweep_trial: int | None = None,
) -> Run:
    run = Run(
        name=name,
        status=RunStatus.queued.value,
        spec=spec.model_dump(mode="json"),
        sweep_id=sweep_id,
        sweep_trial=sweep_trial,
        epochs=spec.epochs,
        progress_epoch=0,
    )
    # Duplicate tags collapse to one, first position kept.
    run.tag_rows = [RunTag(tag=tag, position=i) for i, tag in enumerate(dict.fromkeys(tags))]
    session.add(run)
    session.flush()
    return run


def create_run_from_request(*, session: Session, body: RunCreate) -> Run:
    return create_run(session=session, spec=body.spec(), name=body.name, tags=body.tags)


def get_run(*, session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


def cancel_run(*, session: Session, run_id: int) -> Run:
    """A queued run never starts; a running one stops at its worker's next look (within an epoch)."""
    # One conditional update: a run that succeeds meanwhile must not turn into a cancelled one.
    cancelled = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(ACTIVE_STATUSES))
        .values(status=RunStatus.cancelled.value, finished_at=utcnow())
        .returning(Run.id)
    ).first()
    run = get_run(session=session, run_id=run_id)
    if cancelled is None:
        raise Conflict(f"run {run_id} has already ended ({run.status}); only queued or running runs cancel")
    return run


def get_metrics(*, session: Session, run_id: int, keys: Sequence[MetricKey] | None = None) -> MetricsPublic:
    return MetricsPublic.model_validate(
        run_views.history(session=session, run_id=run_id, keys=keys or list(MetricKey))
    )


def get_predictions(*, session: Session, run_id: int, offset: int, limit: int) -> PredictionsPublic:
    run = get_run(session=session, run_id=run_id)
    artifact = session.get(RunArtifact, (run_id, PREDICTIONS_ARTIFACT))
    if artifact is None:
        raise NotFound(
            f"run {run_id} has no predictions: they are written when a run succeeds, and it is {run.status}"
        )
    stored = json.loads(artifact.data)
    window = slice(offset, offset + limit)
    return PredictionsPublic(
        run_id=run_id,
        task=RunSpec.from_stored(run.spec).task,
        count=len(stored["targets"]),
        offset=offset,
        inputs=stored["inputs"][window],
        targets=stored["targets"][window],
        predictions=stored["predictions"][window],
    )


# Fields that may differ between the members of one bundle: they change numbers, not the shape of the
# model or of the training loop. Width may differ too: narrower members are padded (see the engine).
PER_MEMBER_FIELDS = frozenset({"seed", "lr", "noise", "weight_decay", "width"})
# Below this width a step costs the same whatever the width, so padding up to it is free.
FREE_WIDTH = 8


def width_class(width: int) -> int:
    """Members share a bundle when their widths fall in one class: up to 8, then powers of two."""
    return max(FREE_WIDTH, 1 << (width - 1).bit_length())


def bundle_key(spec: RunSpec) -> tuple[Any, ...]:
    shared = tuple(value for name, value in spec.model_dump().items() if name not in PER_MEMBER_FIELDS)
    return (*shared, width_class(spec.width))


def make_bundles(runs: Sequence[tuple[int, RunSpec]], bundle_size: int) -> list[list[int]]:
    """Group runs that can train as one batched model, at most bundle_size together.

    The costliest bundles come first: workers take them in order, so the long ones start early and the
    short ones fill the gaps at the end (longest-processing-time-first scheduling).
    """
    groups: dict[tuple[Any, ...], list[tuple[int, RunSpec]]] = {}
    for run_id, spec in runs:
        groups.setdefault(bundle_key(spec), []).append((run_id, spec))
    bundles = [
        members[i : i + bundle_size]
        for members in groups.values()
        for i in range(0, len(members), bundle_size)
    ]
    bundles.sort(key=lambda members: -len(members) * max(spec.cost for _, spec in members))
    return [[run_id for run_id, _ in members] for members in bundles]


# --- the worker side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedRun:
    id: int
    spec: RunSpec
    sweep_id: int | None = None
    checkpoint_id: int | None = None


def claim_runs(*, session: Session, run_ids: Iterable[int], worker: str) -> list[ClaimedRun]:
    """Move queued runs to running for this worker (one process). A run already claimed, cancelled or
    ended is skipped, so a redelivered task never trains a run twice at once."""
    claimed = []
    now = utcnow()
    for run_id in run_ids:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.queued.value)
            .values(
                status=RunStatus.running.value,
                worker=worker,
                started_at=func.coalesce(Run.started_at, now),
                heartbeat_at=now,
                attempts=Run.attempts + 1,
                error=None,
            )
            .returning(Run.spec, Run.sweep_id, Run.checkpoint_id)
        ).first()
        if result is not None:
            spec = RunSpec.from_stored(result[0])
            claimed.append(ClaimedRun(id=run_id, spec=spec, sweep_id=result[1], checkpoint_id=result[2]))
    return claimed


def set_device(*, session: Session, run_ids: Iterable[int], device: str) -> None:
    session.execute(update(Run).where(Run.id.in_(list(run_ids))).values(device=device))


def record_epochs(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert epoch rows (a replayed epoch overwrites its row) and move each run's progress forward."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(EpochMetric)
    statement = statement.on_conflict_do_update(
        index_elements=[EpochMetric.run_id, EpochMetric.epoch],
        set_={key.value: statement.excluded[key.value] for key in MetricKey},
    )
    session.execute(statement, list(rows))
    latest: dict[int, int] = {}
    for row in rows:
        latest[row["run_id"]] = max(latest.get(row["run_id"], 0), row["epoch"])
    for run_id, epoch in latest.items():
        session.execute(
            update(Run).where(Run.id == run_id, Run.progress_epoch < epoch).values(progress_epoch=epoch)
        )


def stopped_run_ids(*, session: Session, run_ids: Iterable[int], worker: str) -> set[int]:
    """The runs among these that this worker must stop: cancelled, pruned, ended, or taken over by another
    worker after this one was thought lost."""
    ids = list(run_ids)
    if not ids:
        return set()
    rows = session.scalars(
        select(Run.id).where(
            Run.id.in_(ids), (Run.status != RunStatus.running.value) | (Run.worker != worker)
        )
    )
    return set(rows)


def heartbeat(*, session: Session, run_ids: Iterable[int], worker: str) -> None:
    ids = list(run_ids)
    if ids:
        session.execute(
            update(Run)
            .where(Run.id.in_(ids), Run.status == RunStatus.running.value, Run.worker == worker)
            .values(heartbeat_at=utcnow())
        )


def finish_run(
    *,
    session: Session,
    run_id: int,
    worker: str,
    status: RunStatus,
    summary: dict[str, Any] | None,
    error: str | None = None,
    predictions: dict[str, Any] | None = None,
) -> None:
    """Write the outcome of a run this worker trained. A run cancelled or pruned while it trained keeps
    that status, with its summary. A worker that lost the run (presumed dead, and another took it over)
    writes nothing: the outcome is the new owner's, and a succeeded run is never written again."""
    owned = (Run.id == run_id, Run.worker == worker)
    stopped = (RunStatus.running.value, RunStatus.cancelled.value, RunStatus.pruned.value)
    session.execute(update(Run).where(*owned, Run.status.in_(stopped)).values(summary=summary))
    ended = session.execute(
        update(Run)
        .where(*owned, Run.status == RunStatus.running.value)
        .values(status=status.value, error=error, finished_at=utcnow())
        .returning(Run.id)
    ).first()
    if predictions is not None and ended is not None:
        session.merge(
            RunArtifact(
                run_id=run_id,
                name=PREDICTIONS_ARTIFACT,
                media_type="application/json",
                data=json.dumps(predictions, separators=(",", ":")).encode(),
            )
        )


@dataclass(frozen=True)
class Reconciled:
    requeued: list[list[int]]  # bundles to enqueue again, grouped by checkpoint
    failed: list[int]


def _release(
    session: Session, lost: Sequence[Any], max_attempts: int, unchanged: ColumnElement[bool] | None = None
) -> Reconciled:
    """Send runs whose worker is gone back to the queue, or fail those claimed max_attempts times. Each
    update applies only while the run is still running under the same worker (and `unchanged` holds), so
    a run another worker has claimed meanwhile is left alone."""
    groups: dict[int | None, list[int]] = {}
    failed = []
    for run_id, attempts, worker, checkpoint_id in lost:
        still_lost = [Run.id == run_id, Run.status == RunStatus.running.value, Run.worker == worker]
        if unchanged is not None:
            still_lost.append(unchanged)
        if attempts >= max_attempts:
            error = (
                f"the run's worker was lost {attempts} times (last {worker}); giving up after "
                f"SWEEPYARD_MAX_ATTEMPTS = {max_attempts}"
            )
            values: dict[str, Any] = {
                "status": RunStatus.failed.value,
                "error": error,
                "finished_at": utcnow(),
            }
        else:
            values = {"status": RunStatus.queued.value}
        changed = session.execute(update(Run).where(*still_lost).values(**values).returning(Run.id)).first()
        if changed is None:
            continue
        if attempts >= max_attempts:
            failed.append(run_id)
        else:
            groups.setdefault(checkpoint_id, []).append(run_id)
    requeued = [ids for key, ids in groups.items() if key is not None]
    requeued += [[run_id] for run_id in groups.get(None, [])]
    return Reconciled(requeued=requeued, failed=failed)


LOST_COLUMNS = (Run.id, Run.attempts, Run.worker, Run.checkpoint_id)


def requeue_orphans(
    *, session: Session, worker_prefix: str, is_alive: Callable[[str], bool], max_attempts: int
) -> Reconciled:
    """Runs left `running` by processes of this worker's host that are gone (stopped or killed mid-run) go
    back to the queue at once, without waiting for their heartbeat to go stale. Their history stays: they
    resume from their checkpoint, and the epochs they train again overwrite their rows with the same
    numbers. Runs of live processes (another worker on this host) are left alone."""
    candidates = session.execute(
        select(*LOST_COLUMNS).where(
            Run.status == RunStatus.running.value, Run.worker.startswith(worker_prefix)
        )
    ).all()
    return _release(session, [row for row in candidates if not is_alive(row.worker or "")], max_attempts)


def requeue_stale(*, session: Session, timeout_s: float, max_attempts: int) -> Reconciled:
    """Runs whose worker stopped heartbeating: back to the queue, or failed after max_attempts claims."""
    stale_before = utcnow() - timedelta(seconds=timeout_s)
    stale = session.execute(
        select(*LOST_COLUMNS).where(Run.status == RunStatus.running.value, Run.heartbeat_at < stale_before)
    ).all()
    return _release(session, stale, max_attempts, unchanged=Run.heartbeat_at < stale_before)


def waiting_runs(*, session: Session, older_than_s: float) -> list[tuple[int, RunSpec]]:
    """Queued runs created at least older_than_s ago, oldest first, with their specs (for bundling)."""
    before = utcnow() - timedelta(seconds=older_than_s)
    rows = session.execute(
        select(Run.id, Run.spec)
        .where(Run.status == RunStatus.queued.value, Run.created_at <= before)
        .order_by(Run.id)
    )
    return [(run_id, RunSpec.from_stored(spec)) for run_id, spec in rows]


# --- checkpoints ------------------------------------------------------------------------------------------


def save_checkpoint(
    *, session: Session, checkpoint_id: int | None, run_ids: Sequence[int], epoch: int, data: bytes
) -> int:
    """Write (or overwrite) a bundle's checkpoint and point its runs at it."""
    checkpoint = session.get(Checkpoint, checkpoint_id) if checkpoint_id is not None else None
    if checkpoint is None:
        checkpoint = Checkpoint(epoch=epoch, data=data)
        session.add(checkpoint)
        session.flush()
    else:
        checkpoint.epoch, checkpoint.data = epoch, data
    session.execute(update(Run).where(Run.id.in_(list(run_ids))).values(checkpoint_id=checkpoint.id))
    return checkpoint.id


def load_checkpoint(*, session: Session, checkpoint_id: int) -> bytes | None:
    checkpoint = session.get(Checkpoint, checkpoint_id)
    return checkpoint.data if checkpoint is not None else None


def delete_checkpoint(*, session: Session, checkpoint_id: int) -> None:
    session.execute(update(Run).where(Run.checkpoint_id == checkpoint_id).values(checkpoint_id=None))
    session.execute(delete(Checkpoint).where(Checkpoint.id == checkpoint_id))


def delete_unused_checkpoints(*, session: Session) -> int:
    """Checkpoints no active run points at (their bundle ended, or its worker died at the very end)."""
    in_use = select(Run.checkpoint_id).where(Run.checkpoint_id.is_not(None), Run.status.in_(ACTIVE_STATUSES))
    deleted = session.execute(delete(Checkpoint).where(Checkpoint.id.not_in(in_use)).returning(Checkpoint.id))
    return len(deleted.all())
