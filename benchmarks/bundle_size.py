"""Engine throughput on one core against bundle size: the measurement behind SWEEPYARD_BUNDLE_SIZE.

Trains M runs of the default spec at depth 2 (noisy XOR, 100 epochs, widths 1..3 mixed) as one bundle
for several M and prints runs per second. Run it with `.venv/bin/python -m benchmarks.bundle_size`.
"""

import time

import torch

from app.schemas import RunSpec
from app.services.runs import ClaimedRun
from benchmarks.common import LossKeeper
from worker.training.engine import train_vectorized


def main() -> None:
    torch.set_num_threads(1)
    for members in (1, 8, 16, 32, 64, 128, 256):
        runs = [ClaimedRun(i, RunSpec(depth=2, width=1 + i % 3, seed=i)) for i in range(members)]
        started = time.perf_counter()
        train_vectorized(runs, LossKeeper())
        elapsed = time.perf_counter() - started
        print(f"bundle of {members:3d}: {members / elapsed:6.1f} runs/s ({elapsed:.2f} s)")


if __name__ == "__main__":
    main()
