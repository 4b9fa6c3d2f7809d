"""The worker-side run services on both databases: claiming once, idempotent epochs, outcomes, orphans."""

from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.core.db import session_scope
from app.models import EpochMetric, Run, RunStatus
from app.schemas import RunSpec
from app.services import runs as run_service
from app.services.errors import Conflict


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    fixture = "sweepyard_env" if request.param == "sqlite" else "postgres_env"
    request.getfixturevalue(fixture)
    return str(request.param)


def new_run(**fields: Any) -> int:
    with session_scope() as session:
        return run_service.create_run(session=session, spec=RunSpec.model_validate(fields)).id


def epoch_row(run_id: int, epoch: int, loss: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "epoch": epoch,
        "train_loss": loss,
        "val_loss": loss,
        "best_val_loss": loss,
        "val_accuracy": None,
    }


def test_a_run_is_claimed_once(database: str) -> None:
    run_id = new_run(epochs=5, seed=9)
    with session_scope() as session:
        claimed = run_service.claim_runs(session=session, run_ids=[run_id, 12345], worker="a")
    assert [(c.id, c.spec.seed, c.spec.epochs) for c in claimed] == [(run_id, 9, 5)]
    with session_scope() as session:
        assert run_service.claim_runs(session=session, run_ids=[run_id], worker="b") == []
        run = run_service.get_run(session=session, run_id=run_id)
        assert (run.status, run.worker, run.started_at is not None) == ("running", "a", True)


def test_replayed_epochs_overwrite(database: str) -> None:
    run_id = new_run()
    with session_scope() as session:
        run_service.record_epochs(session=session, rows=[epoch_row(run_id, e, 1.0) for e in (1, 2, 3)])
    with session_scope() as session:
        run_service.record_epochs(session=session, rows=[epoch_row(run_id, e, 0.5) for e in (2, 3, 4)])
    with session_scope() as session:
        count = session.scalar(select(func.count()).where(EpochMetric.run_id == run_id))
        history = run_service.get_metrics(session=session, run_id=run_id)
        progress = run_service.get_run(session=session, run_id=run_id).progress_epoch
    assert count == 4
    assert history.epoch == [1, 2, 3, 4] and history.train_loss == [1.0, 0.5, 0.5, 0.5]
    assert progress == 4


def test_a_run_cancelled_while_training_stays_cancelled(database: str) -> None:
    run_id = new_run()
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run_id], worker="a")
    with session_scope() as session:
        run_service.cancel_run(session=session, run_id=run_id)
    with session_scope() as session:
        assert run_service.stopped_run_ids(session=session, run_ids=[run_id], worker="a") == {run_id}
        run_service.finish_run(
            session=session,
            run_id=run_id,
            worker="a",
            status=RunStatus.succeeded,
            summary={"train_loss": 0.3},
        )
    with session_scope() as session:
        run = run_service.get_run(session=session, run_id=run_id)
        assert (run.status, run.summary) == ("cancelled", {"train_loss": 0.3})


def test_failure_records_its_reason(database: str) -> None:
    run_id = new_run()
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run_id], worker="a")
        run_service.finish_run(
            session=session,
            run_id=run_id,
            worker="a",
            status=RunStatus.failed,
            summary=None,
            error="it broke",
        )
    with session_scope() as session:
        run = run_service.get_run(session=session, run_id=run_id)
        assert (run.status, run.error, run.finished_at is not None) == ("failed", "it broke", True)


def test_orphans_of_this_worker_go_back_to_the_queue_with_their_history(database: str) -> None:
    mine, theirs, queued = new_run(), new_run(), new_run()
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[mine], worker="sweepyard@a/11")
        run_service.claim_runs(session=session, run_ids=[theirs], worker="sweepyard@ab/12")
        run_service.record_epochs(session=session, rows=[epoch_row(mine, 1, 1.0)])
    with session_scope() as session:
        alive = {"sweepyard@a/11": False, "sweepyard@ab/12": True}
        released = run_service.requeue_orphans(
            session=session, worker_prefix="sweepyard@a/", is_alive=alive.__getitem__, max_attempts=3
        )
        assert released.requeued == [[mine]] and released.failed == []
        assert (
            run_service.requeue_orphans(
                session=session, worker_prefix="sweepyard@a", is_alive=alive.__getitem__, max_attempts=3
            ).requeued
            == []
        )
    with session_scope() as session:
        run = run_service.get_run(session=session, run_id=mine)
        assert (run.status, run.attempts, run.started_at is not None) == ("queued", 1, True)
        assert run_service.get_metrics(session=session, run_id=mine).epoch == [1], "resumes; history kept"
        assert run_service.get_run(session=session, run_id=theirs).status == "running"
        assert [run_id for run_id, _ in run_service.waiting_runs(session=session, older_than_s=0)] == [
            mine,
            queued,
        ]
    with session_scope() as session:
        again = run_service.claim_runs(session=session, run_ids=[mine], worker="sweepyard@a/13")
        assert [c.id for c in again] == [mine]
        assert run_service.get_run(session=session, run_id=mine).attempts == 2


def test_stale_runs_are_requeued_by_checkpoint_then_failed_after_max_attempts(database: str) -> None:
    first, second, alone = new_run(), new_run(), new_run()
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[first, second, alone], worker="w/1")
        checkpoint = run_service.save_checkpoint(
            session=session, checkpoint_id=None, run_ids=[first, second], epoch=3, data=b"state"
        )
    with session_scope() as session:
        assert run_service.requeue_stale(session=session, timeout_s=60, max_attempts=3).requeued == []
        result = run_service.requeue_stale(session=session, timeout_s=-1, max_attempts=3)
    assert sorted(map(sorted, result.requeued)) == [[first, second], [alone]] and result.failed == []
    with session_scope() as session:
        assert run_service.load_checkpoint(session=session, checkpoint_id=checkpoint) == b"state"
        run_service.claim_runs(session=session, run_ids=[first], worker="w/2")  # attempt 2
        run_service.requeue_stale(session=session, timeout_s=-1, max_attempts=3)
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[first], worker="w/3")  # attempt 3, the last
    with session_scope() as session:
        assert run_service.claim_runs(session=session, run_ids=[first], worker="w/4") == []
        final = run_service.requeue_stale(session=session, timeout_s=-1, max_attempts=3)
        assert final.failed == [first]
        run = run_service.get_run(session=session, run_id=first)
        assert run.status == "failed" and run.error is not None and "lost 3 times (last w/3)" in run.error


def test_a_run_taken_over_by_another_worker_stops_for_the_first(database: str) -> None:
    run_id = new_run()
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run_id], worker="old/1")
        run_service.requeue_stale(session=session, timeout_s=-1, max_attempts=5)
        run_service.claim_runs(session=session, run_ids=[run_id], worker="new/2")
    with session_scope() as session:
        assert run_service.stopped_run_ids(session=session, run_ids=[run_id], worker="old/1") == {run_id}
        assert run_service.stopped_run_ids(session=session, run_ids=[run_id], worker="new/2") == set()


def test_unused_checkpoints_are_deleted(database: str) -> None:
    done, active = new_run(), new_run()
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[done, active], worker="w/1")
        old = run_service.save_checkpoint(
            session=session, checkpoint_id=None, run_ids=[done], epoch=1, data=b"a"
        )
        kept = run_service.save_checkpoint(
            session=session, checkpoint_id=None, run_ids=[active], epoch=1, data=b"b"
        )
        run_service.finish_run(
            session=session, run_id=done, worker="w/1", status=RunStatus.succeeded, summary={}
        )
    with session_scope() as session:
        assert run_service.delete_unused_checkpoints(session=session) == 1
        assert run_service.load_checkpoint(session=session, checkpoint_id=old) is None
        assert run_service.load_checkpoint(session=session, checkpoint_id=kept) == b"b"


def test_bundles_group_compatible_runs_costliest_first() -> None:
    def spec(**fields: Any) -> RunSpec:
        return RunSpec.model_validate(fields)

    runs = [
        (1, spec(depth=0, width=1, seed=1)),
        (2, spec(depth=3, width=2, seed=1, lr=0.1)),
        (3, spec(depth=0, width=3, seed=2, noise=0.3)),
        (4, spec(depth=3, width=8, seed=2, weight_decay=0.01)),
        (5, spec(depth=3, width=9, seed=3)),  # a wider class: its own bundle
        (6, spec(depth=3, width=2, seed=4, epochs=50)),  # another loop length: its own bundle
        (7, spec(depth=3, width=3, seed=5)),
    ]
    bundles = run_service.make_bundles(runs, bundle_size=2)
    assert sorted(sorted(b) for b in bundles) == [[1, 3], [2, 4], [5], [6], [7]]
    assert bundles[-1] == [1, 3], "the linear models, cheapest, go last"
    costs = [max(dict(runs)[i].cost for i in bundle) * len(bundle) for bundle in bundles]
    assert costs == sorted(costs, reverse=True)


def test_a_worker_that_lost_its_run_writes_nothing_over_the_new_owner(database: str) -> None:
    run_id = new_run()
    with session_scope() as session:
        run_service.claim_runs(session=session, run_ids=[run_id], worker="old/1")
    with session_scope() as session:  # presumed dead: back to the queue, and another worker takes it
        session.execute(update(Run).where(Run.id == run_id).values(status=RunStatus.queued.value))
        run_service.claim_runs(session=session, run_ids=[run_id], worker="new/2")
        run_service.finish_run(
            session=session,
            run_id=run_id,
            worker="new/2",
            status=RunStatus.succeeded,
            summary={"test_loss": 0.1},
        )
    with session_scope() as session:  # the old one wakes up, finds it lost the run, and reports its stop
        assert run_service.stopped_run_ids(session=session, run_ids=[run_id], worker="old/1") == {run_id}
        run_service.finish_run(
            session=session,
            run_id=run_id,
            worker="old/1",
            status=RunStatus.cancelled,
            summary={"test_loss": 9.9},
        )
    with session_scope() as session:
        run = run_service.get_run(session=session, run_id=run_id)
        assert (run.status, run.summary, run.worker) == ("succeeded", {"test_loss": 0.1}, "new/2")
        with pytest.raises(Conflict, match="already ended"):
            run_service.cancel_run(session=session, run_id=run_id)
