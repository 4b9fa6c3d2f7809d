"""The classic depth x width study, three ways, timed in one process run (`make bench`).

Noisy XOR, 2000 points split 60/20/20, batch 64, 100 epochs, Adam lr 0.01, noise 0.1, depth 0..3 x
width 1..3, 10 seeds each: 120 runs.

(a) the per-run notebook loop (nn.Sequential, DataLoader with shuffle, Adam, BCEWithLogitsLoss, torch's
    default threads), on enough runs to know its per-run cost;
(b) Sweepyard's vectorized engine directly on all 120 runs, in this process, on one core;
(c) the whole service end to end: one sweep over HTTP, worker processes as `make run` starts them, until
    the sweep is finished.
Prints runs per second for each, the ratios b/a and c/a, and the 4 x 3 mean/std table from (c).
"""

import argparse
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from app.core.config import get_settings
from app.schemas import RunSpec
from app.services.runs import ClaimedRun, make_bundles
from benchmarks.common import LossKeeper, embedded_service
from worker.training.datasets import make_splits
from worker.training.engine import train_vectorized

DEPTHS, WIDTHS, SEEDS = (0, 1, 2, 3), (1, 2, 3), 10
STUDY = {
    "name": "table2",
    "method": "grid",
    "metric": {"name": "test_loss", "goal": "minimize"},
    "parameters": {"depth": {"values": list(DEPTHS)}, "width": {"values": list(WIDTHS)}},
    "base": {
        "dataset": "noisy_xor",
        "n_samples": 2000,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "batch_size": 64,
        "epochs": 100,
        "lr": 0.01,
        "noise": 0.1,
    },
    "repeats": SEEDS,
}


def study_specs() -> list[RunSpec]:
    base = STUDY["base"]
    assert isinstance(base, dict)
    return [
        RunSpec.model_validate({**base, "depth": depth, "width": width, "seed": seed})
        for depth in DEPTHS
        for width in WIDTHS
        for seed in range(SEEDS)
    ]


def notebook_run(spec: RunSpec) -> float:
    """What a course notebook does for one run; returns the test loss."""
    splits = make_splits(spec)
    train = TensorDataset(torch.as_tensor(splits.train_x), torch.as_tensor(splits.train_y))
    loader = DataLoader(train, batch_size=spec.batch_size, shuffle=True)
    layers: list[nn.Module] = []
    fan_in = spec.input_dim
    for _ in range(spec.depth):
        layers += [nn.Linear(fan_in, spec.width), nn.Tanh()]
        fan_in = spec.width
    model = nn.Sequential(*layers, nn.Linear(fan_in, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    val_x, val_y = torch.as_tensor(splits.val_x), torch.as_tensor(splits.val_y)
    history = []
    for _ in range(spec.epochs):
        model.train()
        losses = []
        for x, y in loader:
            loss = loss_fn(model(x).squeeze(-1), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            history.append((sum(losses) / len(losses), loss_fn(model(val_x).squeeze(-1), val_y).item()))
    with torch.no_grad():
        return float(
            loss_fn(model(torch.as_tensor(splits.test_x)).squeeze(-1), torch.as_tensor(splits.test_y))
        )


def through_the_service() -> tuple[float, str, dict[str, Any]]:
    """POST the study as one sweep to a fresh `sweepyard up`; seconds from POST to finished."""
    with embedded_service() as (client, _):
        time.sleep(3)  # let the worker processes finish starting, as they would have in a running service
        started = time.perf_counter()
        sweep_id = client.post("/api/v1/sweeps", json=STUDY).json()["id"]
        while (sweep := client.get(f"/api/v1/sweeps/{sweep_id}").json())["status"] == "running":
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        table = client.get(f"/api/v1/sweeps/{sweep_id}/table", params={"format": "markdown"}).text
    return elapsed, table, sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notebook-runs", type=int, default=6, help="runs of the notebook loop to time")
    args = parser.parse_args()
    specs = study_specs()

    # (a) one run per depth and width class, spread over the grid, at torch's default threads.
    sample = specs[:: max(1, len(specs) // args.notebook_runs)][: args.notebook_runs]
    started = time.perf_counter()
    for spec in sample:
        notebook_run(spec)
    a = len(sample) / (time.perf_counter() - started)
    print(
        f"(a) notebook loop:        {a:8.2f} runs/s  ({1 / a:.2f} s per run, {len(sample)} runs, "
        f"{torch.get_num_threads()} torch threads)"
    )

    # (b) the engine alone, one core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    runs = [ClaimedRun(i + 1, spec) for i, spec in enumerate(specs)]
    bundles = make_bundles([(run.id, run.spec) for run in runs], get_settings().bundle_size)
    by_id = {run.id: run for run in runs}
    observer = LossKeeper()
    started = time.perf_counter()
    for bundle in bundles:
        train_vectorized([by_id[run_id] for run_id in bundle], observer)
    b = len(runs) / (time.perf_counter() - started)
    torch.set_num_threads(threads)
    assert len(observer.test_losses) == len(runs)
    print(
        f"(b) engine, one core:     {b:8.2f} runs/s  ({len(runs)} runs in {len(bundles)} bundles)  "
        f"b/a = {b / a:.0f}x"
    )

    # (c) the service end to end.
    elapsed, table, sweep = through_the_service()
    c = len(specs) / elapsed
    assert sweep["counts"]["succeeded"] == len(specs), sweep["counts"]
    print(
        f"(c) service end to end:   {c:8.2f} runs/s  ({len(specs)} runs in {elapsed:.1f} s, "
        f"{get_settings().workers} worker processes)  c/a = {c / a:.0f}x"
    )
    print()
    print(table)


if __name__ == "__main__":
    main()
