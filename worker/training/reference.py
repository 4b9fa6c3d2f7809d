"""The plain per-run training loop: nn.Module, torch.optim, and index tensors instead of a DataLoader.

One run at a time, top to bottom. Every random draw (initial weights, each epoch's shuffle) comes from the
run's own CPU generator, so a run's history depends on its spec alone, on any device.
"""

import logging
import math
import time

import torch
from torch import nn

from app.models import RunStatus
from app.schemas import RunSpec
from app.services import frames
from app.services.datasets import Task
from worker.training.datasets import make_splits
from worker.training.observer import RunOutcome, SummaryTracker, TrainingObserver

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
INIT_STREAM = 1
logger = logging.getLogger(__name__)


class TrainingError(Exception):
    """A run cannot go on; the message says why and what to change."""


def resolve_device(asked: str) -> torch.device:
    if asked == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "device 'cuda' was asked for, but this worker has no CUDA device; use cpu or auto"
        )
    if asked == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def run_generator(seed: int) -> torch.Generator:
    """The run's own generator for weights and shuffles, independent of its data stream."""
    return torch.Generator().manual_seed(seed * 2 + INIT_STREAM)


def build_mlp(spec: RunSpec, generator: torch.Generator) -> nn.Sequential:
    widths = [spec.input_dim] + [spec.width] * spec.depth + [1]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:], strict=False)):
        linear = nn.Linear(fan_in, fan_out)
        # PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from the run's generator.
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if i < spec.depth:
            layers.append(ACTIVATIONS[spec.activation]())
    return nn.Sequential(*layers)


def make_optimizer(spec: RunSpec, model: nn.Module) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return ((logits > 0).float() == labels).float().mean().item()


def train_run(run_id: int, spec: RunSpec, observer: TrainingObserver) -> RunOutcome:
    started = time.perf_counter()
    tracker = SummaryTracker(num_params=spec.num_params)
    try:
        device = resolve_device(spec.device)
        observer.started([run_id], str(device))
        splits = make_splits(spec)
        generator = run_generator(spec.seed)
        model = build_mlp(spec, generator).to(device)
        optimizer = make_optimizer(spec, model)
        classification = spec.task is Task.classification
        loss_fn: nn.Module = nn.BCEWithLogitsLoss() if classification else nn.MSELoss()

        def tensor(array: object) -> torch.Tensor:
            return torch.as_tensor(array, device=device)

        train_x, train_y = tensor(splits.train_x), tensor(splits.train_y)
        val_x, val_y = tensor(splits.val_x), tensor(splits.val_y)
        n_train = train_x.shape[0]
        frame_epochs = set(observer.frame_epochs(spec.epochs)) if frames.drawable(spec.input_dim) else set()
        bounds, grid_points = frames.grid(splits.train_x) if frame_epochs else ([], splits.train_x[:0])
        grid_x = tensor(grid_points)

        def report_frame(epoch: int) -> None:
            with torch.no_grad():
                out = model(grid_x).squeeze(-1)
                values = (torch.sigmoid(out) if classification else out).cpu().numpy()
            observer.frame_done(run_id, frames.Frame.on_grid(epoch, bounds, values))

        if 0 in frame_epochs:
            report_frame(0)
        for epoch in range(1, spec.epochs + 1):
            if observer.should_stop(run_id):
                return RunOutcome(RunStatus.cancelled, tracker.summary(time.perf_counter() - started))
            order = torch.randperm(n_train, generator=generator).to(device)
            loss_sum = torch.zeros((), device=device)
            batches = 0
            for first in range(0, n_train, spec.batch_size):
                batch = order[first : first + spec.batch_size]
                loss = loss_fn(model(train_x[batch]).squeeze(-1), train_y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
                batches += 1
            train_loss = (loss_sum / batches).item()
            with torch.no_grad():
                val_out = model(val_x).squeeze(-1)
                val_loss = loss_fn(val_out, val_y).item()
                val_accuracy = accuracy(val_out, val_y) if classification else None
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                bad = train_loss if not math.isfinite(train_loss) else val_loss
                raise TrainingError(
                    f"training diverged: the loss became {bad} at epoch {epoch}; "
                    f"try a learning rate below {spec.lr}"
                )
            observer.epoch_done(run_id, tracker.update(epoch, train_loss, val_loss, val_accuracy))
            if epoch in frame_epochs:
                report_frame(epoch)

        with torch.no_grad():
            test_x, test_y = tensor(splits.test_x), tensor(splits.test_y)
            test_out = model(test_x).squeeze(-1)
            test_loss = loss_fn(test_out, test_y).item()
            test_accuracy = accuracy(test_out, test_y) if classification else None
            predicted = torch.sigmoid(test_out) if classification else test_out
        predictions = {
            "inputs": splits.test_x.round(6).tolist(),
            "targets": splits.test_y.round(6).tolist(),
            "predictions": predicted.cpu().numpy().round(6).tolist(),
        }
        summary = tracker.summary(time.perf_counter() - started, test_loss, test_accuracy)
        return RunOutcome(RunStatus.succeeded, summary, predictions=predictions)
    except TrainingError as exc:
        return RunOutcome(RunStatus.failed, tracker.summary(time.perf_counter() - started), error=str(exc))
    except Exception as exc:  # one run's bug or bad luck must not take the worker down
        logger.exception("run %s failed", run_id)
        error = f"{type(exc).__name__}: {exc}"
        return RunOutcome(RunStatus.failed, tracker.summary(time.perf_counter() - started), error=error)
