"""The vectorized engine: a bundle of M runs of one architecture trains as ONE batched model.

Every weight is stacked along a leading member axis ([M, fan_in, fan_out]) and every step is a handful of
batched matrix products (torch.matmul / bmm) for all members at once. Each member keeps everything that
makes it its own run: its data, its initial weights and its per-epoch shuffle (all drawn from its own
generator, exactly as when it trains alone), its lr and its weight decay. Gradients are written out by
hand, which for an MLP is short and saves autograd's per-step bookkeeping; worker/training/autodiff.py
and the reference loop check them.

Members may differ in width: narrower ones are padded with zero units whose gradients are masked, so
the padding never touches their numbers.
"""

import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.models import RunStatus
from app.schemas import RunSpec
from app.services import frames
from app.services.datasets import Task
from app.services.runs import ClaimedRun
from worker.training.datasets import make_splits
from worker.training.observer import RunOutcome, SummaryTracker, TrainingObserver
from worker.training.reference import TrainingError, resolve_device, run_generator

logger = logging.getLogger(__name__)

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def activation_and_derivative(
    name: str,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[..., torch.Tensor]]:
    """The activation, and its derivative written in terms of (pre-activation z, activation a)."""
    if name == "tanh":
        return torch.tanh, lambda z, a: 1 - a * a
    if name == "relu":
        return torch.relu, lambda z, a: (z > 0).to(z.dtype)
    if name == "sigmoid":
        return torch.sigmoid, lambda z, a: a * (1 - a)
    if name == "gelu":
        inv_sqrt2, inv_sqrt2pi = 1 / math.sqrt(2), 1 / math.sqrt(2 * math.pi)
        return (
            F.gelu,
            lambda z, a: 0.5 * (1 + torch.erf(z * inv_sqrt2)) + z * torch.exp(-0.5 * z * z) * inv_sqrt2pi,
        )
    raise ValueError(f"unknown activation {name}")


def initial_layers(
    spec: RunSpec, generator: torch.Generator, width: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One member's weights, drawn as the reference loop draws them (nn.Linear's default bounds, layer by
    layer, weight then bias), then transposed to [fan_in, fan_out] and zero-padded to `width` units."""
    sizes = [spec.input_dim] + [spec.width] * spec.depth + [1]
    padded = [spec.input_dim] + [width] * spec.depth + [1]
    layers = []
    for (fan_in, fan_out), (pad_in, pad_out) in zip(
        zip(sizes, sizes[1:], strict=False), zip(padded, padded[1:], strict=False), strict=True
    ):
        bound = 1.0 / math.sqrt(fan_in)
        weight = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator)
        bias = torch.empty(fan_out).uniform_(-bound, bound, generator=generator)
        w = torch.zeros(pad_in, pad_out)
        w[:fan_in, :fan_out] = weight.T
        b = torch.zeros(1, pad_out)
        b[0, :fan_out] = bias
        layers.append((w, b))
    return layers


def layer_shapes(spec: RunSpec, width: int) -> list[tuple[int, int]]:
    """[fan_in, fan_out] of each weight then each bias ([1, fan_out]), layer by layer, padded to width."""
    sizes = [spec.input_dim] + [width] * spec.depth + [1]
    return [shape for a, b in zip(sizes, sizes[1:], strict=False) for shape in ((a, b), (1, b))]


def param_views(flat: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Views of the flat [M, P] parameter buffer as W0, b0, W1, b1, ... ([M, fan_in, fan_out])."""
    views, offset = [], 0
    for rows, cols in shapes:
        views.append(flat[:, offset : offset + rows * cols].view(-1, rows, cols))
        offset += rows * cols
    return views


@dataclass
class Bundle:
    """Everything stacked along the member axis; `select` keeps some members and drops the rest.

    All of a member's parameters live in one row of `flat` (the layers are views into it), so the
    optimizer updates every member and every layer with a handful of operations.
    """

    run_ids: list[int]
    specs: list[RunSpec]
    generators: list[torch.Generator]
    trackers: list[SummaryTracker]
    shapes: list[tuple[int, int]]
    flat: torch.Tensor  # [M, P]
    mask: torch.Tensor | None  # [M, P]: 1 for real entries, 0 for padding; None when nobody is padded
    adam_m: torch.Tensor  # [M, P]
    adam_v: torch.Tensor  # [M, P]
    lr: torch.Tensor  # [M, 1]
    weight_decay: torch.Tensor  # [M, 1]
    # train_x [M, n, d], train_y [M, n], val_*, test_*; grid_x [M, G, d] and grid_bounds [M, 2d] for frames
    data: dict[str, torch.Tensor]
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.params = param_views(self.flat, self.shapes)
        self.decays = bool((self.weight_decay != 0).any())

    def select(self, keep: list[int]) -> "Bundle":
        index = torch.tensor(keep, dtype=torch.long, device=self.flat.device)
        return Bundle(
            run_ids=[self.run_ids[i] for i in keep],
            specs=[self.specs[i] for i in keep],
            generators=[self.generators[i] for i in keep],
            trackers=[self.trackers[i] for i in keep],
            shapes=self.shapes,
            flat=self.flat.index_select(0, index),
            mask=self.mask.index_select(0, index) if self.mask is not None else None,
            adam_m=self.adam_m.index_select(0, index),
            adam_v=self.adam_v.index_select(0, index),
            lr=self.lr.index_select(0, index),
            weight_decay=self.weight_decay.index_select(0, index),
            data={name: t.index_select(0, index) for name, t in self.data.items()},
            started=self.started,
        )


def build_bundle(runs: Sequence[ClaimedRun], device: torch.device) -> Bundle:
    specs = [run.spec for run in runs]
    width = max(spec.width for spec in specs)
    generators = [run_generator(spec.seed) for spec in specs]
    rows = [
        torch.cat([t.reshape(-1) for layer in initial_layers(spec, generator, width) for t in layer])
        for spec, generator in zip(specs, generators, strict=True)
    ]
    flat = torch.stack(rows).to(device)
    mask = None
    if any(spec.width != width for spec in specs):
        mask = torch.stack([_real_entries(spec, width) for spec in specs]).to(device, torch.float32)
    splits = [make_splits(spec) for spec in specs]
    data = {
        name: torch.as_tensor(np.stack([getattr(split, name) for split in splits]), device=device)
        for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
    }
    if frames.drawable(specs[0].input_dim):
        grids = [frames.grid(split.train_x) for split in splits]
        data["grid_bounds"] = torch.tensor([bounds for bounds, _ in grids], device=device)
        data["grid_x"] = torch.as_tensor(np.stack([points for _, points in grids]), device=device)

    def per_member(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=device).view(-1, 1)

    return Bundle(
        run_ids=[run.id for run in runs],
        specs=specs,
        generators=generators,
        trackers=[SummaryTracker(num_params=spec.num_params) for spec in specs],
        shapes=layer_shapes(specs[0], width),
        flat=flat,
        mask=mask,
        adam_m=torch.zeros_like(flat),
        adam_v=torch.zeros_like(flat),
        lr=per_member([spec.lr for spec in specs]),
        weight_decay=per_member([spec.weight_decay for spec in specs]),
        data=data,
    )


def _real_entries(spec: RunSpec, width: int) -> torch.Tensor:
    """A flat boolean row: True where a member of spec.width really has a parameter."""
    real = layer_shapes(spec, spec.width)
    parts = []
    for (rows, cols), (real_rows, real_cols) in zip(layer_shapes(spec, width), real, strict=True):
        part = torch.zeros(rows, cols, dtype=torch.bool)
        part[:real_rows, :real_cols] = True
        parts.append(part.reshape(-1))
    return torch.cat(parts)


def forward(
    params: list[torch.Tensor], x: torch.Tensor, activation: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Logits [M, B] plus what backward needs: each layer's input and each hidden pre-activation."""
    inputs, pre_activations = [], []
    h = x
    n_layers = len(params) // 2
    for layer in range(n_layers):
        inputs.append(h)
        # matmul then add measured about twice as fast as baddbmm with a broadcast bias at these sizes.
        z = torch.matmul(h, params[2 * layer]).add_(params[2 * layer + 1])
        if layer < n_layers - 1:
            pre_activations.append(z)
            h = activation(z)
        else:
            h = z
    return h.squeeze(-1), inputs, pre_activations


def loss_and_gradient(
    logits: torch.Tensor, targets: torch.Tensor, task: Task
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's mean loss over the batch [M], and its gradient with respect to the logits [M, B]."""
    batch = logits.shape[1]
    if task is Task.classification:
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1)
        return loss, (torch.sigmoid(logits) - targets) / batch
    error = logits - targets
    return (error * error).mean(dim=1), error * (2.0 / batch)


def backward(
    params: list[torch.Tensor],
    inputs: list[torch.Tensor],
    pre_activations: list[torch.Tensor],
    grad_logits: torch.Tensor,
    derivative: Callable[..., torch.Tensor],
) -> list[torch.Tensor]:
    """Gradients of the summed member losses, in the order of params (each member gets its own)."""
    n_layers = len(params) // 2
    grads: list[torch.Tensor] = [torch.empty(0)] * len(params)
    grad_z = grad_logits.unsqueeze(-1)
    for layer in reversed(range(n_layers)):
        grads[2 * layer] = torch.bmm(inputs[layer].transpose(1, 2), grad_z)
        grads[2 * layer + 1] = grad_z.sum(dim=1, keepdim=True)
        if layer > 0:
            grad_h = torch.bmm(grad_z, params[2 * layer].transpose(1, 2))
            z = pre_activations[layer - 1]
            grad_z = grad_h * derivative(z, inputs[layer])
    return grads


def optimizer_step(bundle: Bundle, grads: list[torch.Tensor], step: int, optimizer: str) -> None:
    """torch.optim's Adam / SGD (L2 weight decay added to the gradient), with per-member lr and weight
    decay, on the whole flat [M, P] buffer at once."""
    members = bundle.flat.shape[0]
    grad = torch.cat([g.reshape(members, -1) for g in grads], dim=1)
    if bundle.mask is not None:
        grad.mul_(bundle.mask)
    if bundle.decays:
        grad.addcmul_(bundle.flat, bundle.weight_decay)
    if optimizer == "sgd":
        bundle.flat.sub_(grad.mul_(bundle.lr))
        return
    beta1, beta2 = ADAM_BETAS
    bundle.adam_m.lerp_(grad, 1 - beta1)
    bundle.adam_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denominator = bundle.adam_v.sqrt().div_(math.sqrt(1 - beta2**step)).add_(ADAM_EPS)
    bundle.flat.sub_(bundle.adam_m.div(denominator).mul_(bundle.lr / (1 - beta1**step)))


def evaluate(
    bundle: Bundle, split: str, task: Task, activation: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    logits, _, _ = forward(bundle.params, bundle.data[f"{split}_x"], activation)
    targets = bundle.data[f"{split}_y"]
    loss, _ = loss_and_gradient(logits, targets, task)
    accuracy = ((logits > 0).float() == targets).float().mean(dim=1) if task is Task.classification else None
    return logits, loss, accuracy


def snapshot(bundle: Bundle, epoch: int, step: int) -> bytes:
    """The bundle's whole training state after `epoch`: tensors and numbers only, for torch.load with
    weights_only=True (no pickle of arbitrary objects, on save or on load)."""
    state = {
        "run_ids": torch.tensor(bundle.run_ids, dtype=torch.long),
        "epoch": epoch,
        "step": step,
        "elapsed_s": time.perf_counter() - bundle.started,
        "flat": bundle.flat.cpu(),
        "adam_m": bundle.adam_m.cpu(),
        "adam_v": bundle.adam_v.cpu(),
        "generators": torch.stack([generator.get_state() for generator in bundle.generators]),
        "trackers": torch.tensor([tracker.state() for tracker in bundle.trackers], dtype=torch.float64),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def checkpoint_members(data: bytes) -> list[int]:
    state = torch.load(io.BytesIO(data), weights_only=True)
    return [int(run_id) for run_id in state["run_ids"].tolist()]


def restore(bundle: Bundle, data: bytes) -> tuple[int, int]:
    """Put a snapshot's state into a freshly built bundle of (some of) the same runs; returns the epoch
    and optimizer step to continue after."""
    state = torch.load(io.BytesIO(data), weights_only=True)
    position = {int(run_id): i for i, run_id in enumerate(state["run_ids"].tolist())}
    index = torch.tensor([position[run_id] for run_id in bundle.run_ids], dtype=torch.long)
    device = bundle.flat.device
    bundle.flat.copy_(state["flat"].index_select(0, index).to(device))
    bundle.adam_m.copy_(state["adam_m"].index_select(0, index).to(device))
    bundle.adam_v.copy_(state["adam_v"].index_select(0, index).to(device))
    for i, generator in zip(index.tolist(), bundle.generators, strict=True):
        generator.set_state(state["generators"][i].clone())
    for i, tracker in zip(index.tolist(), bundle.trackers, strict=True):
        tracker.restore(state["trackers"][i].tolist())
    bundle.started = time.perf_counter() - float(state["elapsed_s"])
    return int(state["epoch"]), int(state["step"])


def train_vectorized(
    runs: Sequence[ClaimedRun], observer: TrainingObserver, resume: bytes | None = None
) -> None:
    """Train a bundle of compatible runs (same dataset, sizes, depth, activation, optimizer, batch size,
    epochs and device) and report every member's epochs and outcome. With `resume`, a snapshot of an
    earlier life of this bundle, training continues after its epoch exactly as if never interrupted."""
    if resume is not None:
        saved_ids = checkpoint_members(resume)
        by_id = {run.id: run for run in runs}
        fresh = [run for run in runs if run.id not in saved_ids]
        if fresh:
            train_vectorized(fresh, observer)
        runs = [by_id[run_id] for run_id in saved_ids if run_id in by_id]
        if not runs:
            return
    first = runs[0].spec
    try:
        device = resolve_device(first.device)
    except TrainingError as exc:
        for run in runs:
            observer.finished(run.id, RunOutcome(RunStatus.failed, None, error=str(exc)))
        return
    observer.started([run.id for run in runs], str(device))
    bundle = build_bundle(runs, device)
    activation, derivative = activation_and_derivative(first.activation)
    task = first.task
    n_train = bundle.data["train_x"].shape[1]
    batch_size = first.batch_size
    done_epochs, step = restore(bundle, resume) if resume is not None else (0, 0)
    frame_epochs = set(observer.frame_epochs(first.epochs)) if "grid_x" in bundle.data else set()
    if done_epochs == 0 and 0 in frame_epochs:
        _report_frames(bundle, 0, task, activation, observer)

    for epoch in range(done_epochs + 1, first.epochs + 1):
        bundle = _drop_stopped(bundle, observer)
        if not bundle.run_ids:
            return
        order = torch.stack([torch.randperm(n_train, generator=g) for g in bundle.generators]).to(device)
        rows = torch.arange(len(bundle.run_ids), device=device).unsqueeze(1)
        shuffled_x, shuffled_y = bundle.data["train_x"][rows, order], bundle.data["train_y"][rows, order]
        loss_sum = torch.zeros(len(bundle.run_ids), device=device)
        batches = 0
        for start in range(0, n_train, batch_size):
            x, y = shuffled_x[:, start : start + batch_size], shuffled_y[:, start : start + batch_size]
            logits, inputs, pre_activations = forward(bundle.params, x, activation)
            loss, grad_logits = loss_and_gradient(logits, y, task)
            step += 1
            optimizer_step(
                bundle,
                backward(bundle.params, inputs, pre_activations, grad_logits, derivative),
                step,
                first.optimizer,
            )
            loss_sum += loss
            batches += 1
        _, val_loss, val_accuracy = evaluate(bundle, "val", task, activation)
        columns = [loss_sum / batches, val_loss] + ([val_accuracy] if val_accuracy is not None else [])
        table = torch.stack(columns, dim=1).tolist()
        failed = []
        for i, row in enumerate(table):
            train_loss, val = row[0], row[1]
            if not (math.isfinite(train_loss) and math.isfinite(val)):
                bad = train_loss if not math.isfinite(train_loss) else val
                error = (
                    f"training diverged: the loss became {bad} at epoch {epoch}; "
                    f"try a learning rate below {bundle.specs[i].lr}"
                )
                observer.finished(bundle.run_ids[i], _outcome(bundle, i, RunStatus.failed, error=error))
                failed.append(i)
                continue
            accuracy = row[2] if val_accuracy is not None else None
            observer.epoch_done(
                bundle.run_ids[i], bundle.trackers[i].update(epoch, train_loss, val, accuracy)
            )
        if failed:
            bundle = bundle.select([i for i in range(len(bundle.run_ids)) if i not in failed])
            if not bundle.run_ids:
                return
        if epoch in frame_epochs:
            _report_frames(bundle, epoch, task, activation, observer)
        if epoch < first.epochs and observer.checkpoint_due():
            observer.save_checkpoint(list(bundle.run_ids), epoch, snapshot(bundle, epoch, step))

    logits, test_loss, test_accuracy = evaluate(bundle, "test", task, activation)
    outputs = torch.sigmoid(logits) if task is Task.classification else logits
    test_losses = test_loss.tolist()
    test_accuracies = test_accuracy.tolist() if test_accuracy is not None else [None] * len(test_losses)
    inputs_np = bundle.data["test_x"].cpu().numpy().round(6)
    targets_np = bundle.data["test_y"].cpu().numpy().round(6)
    outputs_np = outputs.cpu().numpy().round(6)
    for i, run_id in enumerate(bundle.run_ids):
        predictions = {
            "inputs": inputs_np[i].tolist(),
            "targets": targets_np[i].tolist(),
            "predictions": outputs_np[i].tolist(),
        }
        outcome = _outcome(bundle, i, RunStatus.succeeded, test_losses[i], test_accuracies[i], predictions)
        observer.finished(run_id, outcome)


def _report_frames(
    bundle: Bundle,
    epoch: int,
    task: Task,
    activation: Callable[[torch.Tensor], torch.Tensor],
    observer: TrainingObserver,
) -> None:
    logits, _, _ = forward(bundle.params, bundle.data["grid_x"], activation)
    outputs = (torch.sigmoid(logits) if task is Task.classification else logits).cpu().numpy()
    for run_id, bounds, values in zip(
        bundle.run_ids, bundle.data["grid_bounds"].tolist(), outputs, strict=True
    ):
        observer.frame_done(run_id, frames.Frame.on_grid(epoch, bounds, values))


def _outcome(
    bundle: Bundle,
    i: int,
    status: RunStatus,
    test_loss: float | None = None,
    test_accuracy: float | None = None,
    predictions: dict[str, Any] | None = None,
    error: str | None = None,
) -> RunOutcome:
    summary = bundle.trackers[i].summary(time.perf_counter() - bundle.started, test_loss, test_accuracy)
    return RunOutcome(status, summary, error=error, predictions=predictions)


def _drop_stopped(bundle: Bundle, observer: TrainingObserver) -> Bundle:
    """Members cancelled or pruned since the last epoch leave; the others train on undisturbed."""
    stopped = [i for i, run_id in enumerate(bundle.run_ids) if observer.should_stop(run_id)]
    if not stopped:
        return bundle
    for i in stopped:
        observer.finished(bundle.run_ids[i], _outcome(bundle, i, RunStatus.cancelled))
    return bundle.select([i for i in range(len(bundle.run_ids)) if i not in stopped])
