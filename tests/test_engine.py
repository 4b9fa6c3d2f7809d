"""The vectorized engine: against itself alone, the reference loop, and a scalar autodiff engine."""

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from app.models import RunStatus
from app.schemas import RunSpec
from app.services.runs import ClaimedRun
from worker.training import autodiff, train_bundle
from worker.training.engine import (
    activation_and_derivative,
    backward,
    forward,
    loss_and_gradient,
    train_vectorized,
)
from worker.training.observer import EpochMetrics, RunOutcome, TrainingObserver
from worker.training.reference import train_run


@dataclass
class Recorder(TrainingObserver):
    """An observer that keeps everything and stops runs at chosen epochs."""

    stop_at: dict[int, int] = field(default_factory=dict)  # run id -> stop before this epoch
    epochs: dict[int, list[EpochMetrics]] = field(default_factory=dict)
    outcomes: dict[int, RunOutcome] = field(default_factory=dict)

    def started(self, run_ids: list[int], device: str) -> None:
        assert device == "cpu"

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None:
        self.epochs.setdefault(run_id, []).append(metrics)

    def should_stop(self, run_id: int) -> bool:
        return run_id in self.stop_at and len(self.epochs.get(run_id, [])) + 1 >= self.stop_at[run_id]

    def finished(self, run_id: int, outcome: RunOutcome) -> None:
        self.outcomes[run_id] = outcome


def spec(**fields: Any) -> RunSpec:
    return RunSpec.model_validate({"epochs": 20, "n_samples": 600, **fields})


def alone(run_spec: RunSpec) -> Recorder:
    recorder = Recorder()
    train_vectorized([ClaimedRun(1, run_spec)], recorder)
    return recorder


def assert_same_history(a: list[EpochMetrics], b: list[EpochMetrics], tolerance: float) -> None:
    assert [m.epoch for m in a] == [m.epoch for m in b]
    for x, y in zip(a, b, strict=True):
        assert x.train_loss == pytest.approx(y.train_loss, abs=tolerance), x.epoch
        assert x.val_loss == pytest.approx(y.val_loss, abs=tolerance), x.epoch
        assert x.best_val_loss == pytest.approx(y.best_val_loss, abs=tolerance), x.epoch
        if x.val_accuracy is None:
            assert y.val_accuracy is None
        else:
            assert y.val_accuracy is not None and abs(x.val_accuracy - y.val_accuracy) <= 1 / 120 + 1e-9


@pytest.mark.parametrize(
    "fields",
    [
        {"depth": 0, "width": 1},
        {"depth": 1, "width": 3, "lr": 0.03},
        {"depth": 2, "width": 8, "activation": "relu", "weight_decay": 0.01},
        {"depth": 3, "width": 5, "activation": "sigmoid", "optimizer": "sgd", "lr": 0.5},
        {"depth": 3, "width": 4, "activation": "gelu", "batch_size": 50},
        {"depth": 2, "width": 6, "dataset": "regression_1d", "noise": 0.3},
        {
            "depth": 1,
            "width": 8,
            "dataset": "regression_1d",
            "optimizer": "sgd",
            "lr": 0.05,
            "weight_decay": 0.1,
        },
    ],
)
def test_vectorized_agrees_with_the_reference_loop(fields: dict[str, Any]) -> None:
    run_spec = spec(**fields, seed=7)
    vectorized = alone(run_spec)
    reference = Recorder()
    outcome = train_run(1, run_spec, reference)
    assert_same_history(vectorized.epochs[1], reference.epochs[1], 1e-4)
    assert vectorized.outcomes[1].status is outcome.status is RunStatus.succeeded
    assert vectorized.outcomes[1].summary is not None and outcome.summary is not None
    assert vectorized.outcomes[1].summary["test_loss"] == pytest.approx(
        outcome.summary["test_loss"], abs=1e-4
    )
    assert vectorized.outcomes[1].summary["num_params"] == outcome.summary["num_params"]
    assert vectorized.outcomes[1].predictions is not None and outcome.predictions is not None
    assert vectorized.outcomes[1].predictions["targets"] == outcome.predictions["targets"]


def test_a_run_trains_the_same_in_a_bundle_as_alone() -> None:
    specs = [
        spec(depth=2, width=4, seed=seed, lr=lr, noise=noise, weight_decay=wd)
        for seed, lr, noise, wd in [
            (0, 0.01, 0.1, 0),
            (1, 0.03, 0.2, 0),
            (2, 0.005, 0.1, 0.01),
            (3, 0.01, 0.4, 0),
            (4, 0.1, 0.05, 0.001),
            (5, 0.02, 0.1, 0),
        ]
    ]
    bundle = Recorder()
    train_vectorized([ClaimedRun(i, s) for i, s in enumerate(specs)], bundle)
    for i, run_spec in enumerate(specs):
        assert_same_history(bundle.epochs[i], alone(run_spec).epochs[1], 1e-5)
    assert len({bundle.outcomes[i].summary["test_loss"] for i in range(6)}) == 6  # type: ignore[index]


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "gelu"])
def test_mixed_widths_are_padded_without_changing_any_member(activation: str) -> None:
    specs = [spec(depth=2, width=width, seed=width, activation=activation) for width in (1, 2, 3, 5, 8)]
    bundle = Recorder()
    train_vectorized([ClaimedRun(i, s) for i, s in enumerate(specs)], bundle)
    for i, run_spec in enumerate(specs):
        solo = alone(run_spec)
        assert_same_history(bundle.epochs[i], solo.epochs[1], 1e-5)
        assert bundle.outcomes[i].summary["num_params"] == run_spec.num_params  # type: ignore[index]


def test_cancel_and_failure_of_one_member_leave_the_others_alone() -> None:
    common = {"depth": 2, "width": 16, "dataset": "regression_1d", "optimizer": "sgd"}
    healthy = [spec(**common, seed=seed, lr=0.05) for seed in (1, 2, 3)]
    diverging = spec(**common, seed=4, lr=10.0)
    runs = [ClaimedRun(i, s) for i, s in enumerate([*healthy, diverging])]
    bundle = Recorder(stop_at={1: 6})
    train_vectorized(runs, bundle)

    assert bundle.outcomes[1].status is RunStatus.cancelled
    assert [m.epoch for m in bundle.epochs[1]] == [1, 2, 3, 4, 5]
    assert_same_history(bundle.epochs[1], alone(healthy[1]).epochs[1][:5], 1e-5)
    for i in (0, 2):
        assert bundle.outcomes[i].status is RunStatus.succeeded
        assert_same_history(bundle.epochs[i], alone(healthy[i]).epochs[1], 1e-5)
    failed = bundle.outcomes[3]
    assert failed.status is RunStatus.failed and failed.error is not None
    assert failed.error.startswith("training diverged") and "learning rate below 10.0" in failed.error
    assert len(bundle.epochs.get(3, [])) < 20


def test_train_bundle_groups_runs_and_honours_the_reference_engine() -> None:
    runs = [
        ClaimedRun(1, spec(depth=1, width=2, seed=1)),
        ClaimedRun(2, spec(depth=2, width=2, seed=2)),
        ClaimedRun(3, spec(depth=1, width=3, seed=3, engine="reference")),
        ClaimedRun(4, spec(depth=1, width=7, seed=4)),
    ]
    recorder = Recorder()
    train_bundle(runs, recorder)
    assert all(recorder.outcomes[i].status is RunStatus.succeeded for i in (1, 2, 3, 4))
    for run in runs:
        assert_same_history(recorder.epochs[run.id], alone(run.spec).epochs[1], 1e-4)


@pytest.mark.parametrize(
    ("activation", "task"), [("tanh", "noisy_xor"), ("sigmoid", "regression_1d"), ("relu", "noisy_xor")]
)
def test_hand_written_gradients_match_scalar_autodiff(activation: str, task: str) -> None:
    torch.manual_seed(0)
    sizes = [2 if task == "noisy_xor" else 1, 3, 2, 1]
    members, batch = 2, 5
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:], strict=False):
        params += [
            torch.randn(members, fan_in, fan_out, dtype=torch.float64),
            torch.randn(members, 1, fan_out, dtype=torch.float64),
        ]
    x = torch.randn(members, batch, sizes[0], dtype=torch.float64)
    y = (torch.rand(members, batch, dtype=torch.float64) > 0.5).to(torch.float64)
    act, derivative = activation_and_derivative(activation)
    logits, inputs, pre_activations = forward(params, x, act)
    run_spec = spec(dataset=task)
    _, grad_logits = loss_and_gradient(logits, y, run_spec.task)
    grads = backward(params, inputs, pre_activations, grad_logits, derivative)

    for m in range(members):
        layers = [
            (
                [[autodiff.Var(v) for v in row] for row in params[2 * i][m].tolist()],
                [autodiff.Var(v) for v in params[2 * i + 1][m, 0].tolist()],
            )
            for i in range(len(sizes) - 1)
        ]
        point_loss = autodiff.bce_with_logits if task == "noisy_xor" else autodiff.squared_error
        losses = [
            point_loss(autodiff.mlp(x[m, b].tolist(), layers, activation), float(y[m, b]))
            for b in range(batch)
        ]
        loss = autodiff.total(losses) / batch
        loss.backward()
        for i, (weights, biases) in enumerate(layers):
            expected_w = torch.tensor([[w.grad for w in row] for row in weights], dtype=torch.float64)
            expected_b = torch.tensor([b.grad for b in biases], dtype=torch.float64)
            torch.testing.assert_close(grads[2 * i][m], expected_w, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(grads[2 * i + 1][m, 0], expected_b, rtol=1e-9, atol=1e-12)


def test_autodiff_engine_itself() -> None:
    a, b = autodiff.Var(2.0), autodiff.Var(-3.0)
    out = (a * b + a.tanh() * 4.0 - b / a).sigmoid()
    out.backward()
    s = out.value
    tanh2 = torch.tanh(torch.tensor(2.0)).item()
    inner_grad_a = -3.0 + 4 * (1 - tanh2**2) - 3.0 / 4.0
    assert a.grad == pytest.approx(s * (1 - s) * inner_grad_a)
    assert b.grad == pytest.approx(s * (1 - s) * (2.0 - 0.5))


def test_an_engine_error_fails_the_bundle_runs_instead_of_leaving_them_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import worker.training.engine as engine

    def out_of_memory(*_: Any) -> None:
        raise MemoryError("cannot allocate")

    monkeypatch.setattr(engine, "build_bundle", out_of_memory)
    recorder = Recorder()
    train_bundle([ClaimedRun(1, spec(seed=1)), ClaimedRun(2, spec(seed=2))], recorder)
    assert {run_id: o.status for run_id, o in recorder.outcomes.items()} == {
        1: RunStatus.failed,
        2: RunStatus.failed,
    }
    assert recorder.outcomes[1].error == "MemoryError: cannot allocate"


class Crash(Exception):
    pass


@dataclass
class Checkpointing(Recorder):
    """Saves a checkpoint after every epoch and dies (like a killed worker) before epoch `die_at`."""

    die_at: int = 0
    saved: list[tuple[list[int], int, bytes]] = field(default_factory=list)

    def checkpoint_due(self) -> bool:
        return True

    def save_checkpoint(self, run_ids: list[int], epoch: int, data: bytes) -> None:
        self.saved.append((run_ids, epoch, data))

    def should_stop(self, run_id: int) -> bool:
        if self.die_at and self.epochs and max(len(v) for v in self.epochs.values()) + 1 >= self.die_at:
            raise Crash
        return super().should_stop(run_id)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_history(optimizer: str) -> None:
    specs = [spec(depth=2, width=w, seed=w, lr=0.02, optimizer=optimizer, epochs=12) for w in (2, 3, 5)]
    runs = [ClaimedRun(i, s) for i, s in enumerate(specs)]
    uninterrupted = Recorder()
    train_vectorized(runs, uninterrupted)

    first_life = Checkpointing(die_at=6)
    with pytest.raises(Crash):
        train_vectorized(runs, first_life)
    ids, epoch, data = first_life.saved[-1]
    assert (sorted(ids), epoch) == ([0, 1, 2], 5)
    second_life = Recorder()
    train_vectorized(list(reversed(runs)), second_life, resume=data)

    for run in runs:
        history = first_life.epochs[run.id][:5] + second_life.epochs[run.id]
        assert history == uninterrupted.epochs[run.id], "bit for bit the same numbers"
        resumed = second_life.outcomes[run.id].summary
        original = uninterrupted.outcomes[run.id].summary
        assert resumed is not None and original is not None
        assert {k: v for k, v in resumed.items() if k != "duration_s"} == {
            k: v for k, v in original.items() if k != "duration_s"
        }


def test_a_checkpoint_holds_tensors_only() -> None:
    first_life = Checkpointing(die_at=3)
    with pytest.raises(Crash):
        train_vectorized([ClaimedRun(1, spec(epochs=5))], first_life)
    import io

    state = torch.load(io.BytesIO(first_life.saved[-1][2]), weights_only=True)
    assert set(state) == {
        "run_ids",
        "epoch",
        "step",
        "elapsed_s",
        "flat",
        "adam_m",
        "adam_v",
        "generators",
        "trackers",
    }
