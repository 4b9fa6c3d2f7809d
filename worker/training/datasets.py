"""The data set generators, in NumPy so that the same seed gives the same points on every machine.

Each run draws its data from its own generator, seeded by (seed, DATA_STREAM): the data of a run never
depends on what else trains beside it, and runs that differ only in noise see the same underlying draws.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.schemas import RunSpec
from app.services.datasets import DatasetName, Task

DATA_STREAM = 0
Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Splits:
    task: Task
    train_x: Array
    train_y: Array
    val_x: Array
    val_y: Array
    test_x: Array
    test_y: Array


def noisy_xor(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, Array]:
    centres = rng.integers(0, 2, size=(n, 2))
    x = centres + noise * rng.standard_normal((n, 2))
    y = centres[:, 0] ^ centres[:, 1]
    return x.astype(np.float32), y.astype(np.float32)


def regression_1d(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, Array]:
    x = np.linspace(-3.0, 3.0, n)
    y = 0.5 * np.sin(3.0 * x) + x + noise * rng.standard_normal(n)
    return x[:, None].astype(np.float32), y.astype(np.float32)


GENERATORS = {DatasetName.noisy_xor: noisy_xor, DatasetName.regression_1d: regression_1d}


def make_splits(spec: RunSpec) -> Splits:
    rng = np.random.default_rng([spec.seed, DATA_STREAM])
    x, y = GENERATORS[spec.dataset](spec.n_samples, spec.noise, rng)
    order = rng.permutation(spec.n_samples)
    sizes = spec.split_sizes
    train, val, test = np.split(order, [sizes.train, sizes.train + sizes.val])
    splits = Splits(spec.task, x[train], y[train], x[val], y[val], x[test], y[test])
    if spec.dataset is DatasetName.regression_1d:
        splits = _standardised(splits)
    return splits


def _standardised(splits: Splits) -> Splits:
    """Scale x and y by the training split's mean and std (the validation and test splits too)."""
    x_mean, x_std = splits.train_x.mean(axis=0), splits.train_x.std(axis=0)
    y_mean, y_std = splits.train_y.mean(), splits.train_y.std()

    def sx(a: Array) -> Array:
        return np.asarray((a - x_mean) / x_std, dtype=np.float32)

    def sy(a: Array) -> Array:
        return np.asarray((a - y_mean) / y_std, dtype=np.float32)

    return Splits(
        splits.task,
        sx(splits.train_x),
        sy(splits.train_y),
        sx(splits.val_x),
        sy(splits.val_y),
        sx(splits.test_x),
        sy(splits.test_y),
    )
