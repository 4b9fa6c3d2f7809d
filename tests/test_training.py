"""The reference training loop, driven directly with an in-memory observer."""

import math
from dataclasses import dataclass, field

import pytest
import torch

from app.models import RunStatus
from app.schemas import RunSpec
from worker.training.observer import EpochMetrics, RunOutcome, TrainingObserver
from worker.training.reference import build_mlp, run_generator, train_run


@dataclass
class MemoryObserver(TrainingObserver):
    stop_after: int | None = None
    epochs: list[EpochMetrics] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)

    def started(self, run_ids: list[int], device: str) -> None:
        self.devices.append(device)

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)

    def should_stop(self, run_id: int) -> bool:
        return self.stop_after is not None and len(self.epochs) >= self.stop_after

    def finished(self, run_id: int, outcome: RunOutcome) -> None:
        raise AssertionError("train_run returns its outcome; train_bundle reports it")


def train(stop_after: int | None = None, **fields: object) -> tuple[RunOutcome, MemoryObserver]:
    observer = MemoryObserver(stop_after=stop_after)
    return train_run(1, RunSpec.model_validate(fields), observer), observer


def test_default_xor_run_learns_and_reports_every_epoch() -> None:
    outcome, observer = train()
    assert outcome.status is RunStatus.succeeded and outcome.error is None
    assert [m.epoch for m in observer.epochs] == list(range(1, 101))
    assert observer.devices == ["cpu"]
    summary = outcome.summary
    assert summary is not None
    assert summary["test_accuracy"] > 0.95 and summary["test_loss"] < 0.2
    assert summary["num_params"] == 13
    assert summary["train_loss"] == observer.epochs[-1].train_loss
    losses = [m.val_loss for m in observer.epochs]
    assert summary["best_val_loss"] == min(losses)
    assert summary["best_epoch"] == losses.index(min(losses)) + 1
    assert all(m.val_accuracy is not None and 0 <= m.val_accuracy <= 1 for m in observer.epochs)
    running_min = [min(losses[: i + 1]) for i in range(len(losses))]
    assert [m.best_val_loss for m in observer.epochs] == running_min
    assert observer.epochs[0].train_loss > 0.5 > observer.epochs[-1].train_loss
    predictions = outcome.predictions
    assert predictions is not None and len(predictions["targets"]) == 400
    assert all(0 <= p <= 1 for p in predictions["predictions"])
    assert len(predictions["inputs"][0]) == 2


def test_same_spec_same_history_other_seed_other_history() -> None:
    _, first = train(epochs=5, seed=3)
    _, again = train(epochs=5, seed=3)
    _, other = train(epochs=5, seed=4)
    assert first.epochs == again.epochs
    assert first.epochs != other.epochs


def test_regression_run_has_no_accuracy_and_fits_the_curve() -> None:
    outcome, observer = train(dataset="regression_1d", depth=2, width=16, epochs=60, noise=0.1)
    assert outcome.status is RunStatus.succeeded
    assert all(m.val_accuracy is None for m in observer.epochs)
    assert outcome.summary is not None
    assert outcome.summary["test_accuracy"] is None and outcome.summary["val_accuracy"] is None
    assert outcome.summary["test_loss"] < 0.1  # standardised targets: 1.0 is "predicts the mean"


@pytest.mark.parametrize(
    ("depth", "width", "dataset"),
    [(0, 3, "noisy_xor"), (1, 1, "regression_1d"), (3, 8, "noisy_xor"), (2, 5, "regression_1d")],
)
def test_num_params_counts_the_model(depth: int, width: int, dataset: str) -> None:
    spec = RunSpec.model_validate({"depth": depth, "width": width, "dataset": dataset})
    model = build_mlp(spec, run_generator(0))
    assert spec.num_params == sum(p.numel() for p in model.parameters())
    assert len([m for m in model if isinstance(m, torch.nn.Linear)]) == depth + 1


def test_initial_weights_follow_pytorch_default_bounds() -> None:
    spec = RunSpec.model_validate({"depth": 2, "width": 50})
    model = build_mlp(spec, run_generator(0))
    for layer in (m for m in model if isinstance(m, torch.nn.Linear)):
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
        assert layer.weight.abs().max() > 0.8 * bound


def test_stop_request_ends_the_run_as_cancelled_after_the_current_epoch() -> None:
    outcome, observer = train(stop_after=3)
    assert outcome.status is RunStatus.cancelled
    assert len(observer.epochs) == 3
    assert outcome.summary is not None and outcome.summary["test_loss"] is None
    assert outcome.summary["train_loss"] == observer.epochs[-1].train_loss
    assert outcome.predictions is None


def test_divergence_fails_the_run_with_a_reason() -> None:
    outcome, observer = train(dataset="regression_1d", optimizer="sgd", lr=10, depth=2, width=32, epochs=50)
    assert outcome.status is RunStatus.failed
    assert outcome.error is not None and "training diverged" in outcome.error
    assert "learning rate below 10" in outcome.error
    assert outcome.summary is not None and outcome.summary["test_loss"] is None
    assert all(math.isfinite(m.train_loss) for m in observer.epochs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the run would train there")
def test_cuda_asked_without_cuda_fails_clearly() -> None:
    outcome, observer = train(device="cuda", epochs=2)
    assert outcome.status is RunStatus.failed
    assert outcome.error == (
        "device 'cuda' was asked for, but this worker has no CUDA device; use cpu or auto"
    )
    assert observer.epochs == []
