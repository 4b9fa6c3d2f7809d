"""The data set generators against CONTRACT.md's definitions."""

import numpy as np
import pytest

from app.schemas import RunSpec
from app.services.datasets import CATALOG, Task
from worker.training.datasets import DATA_STREAM, make_splits, regression_1d


def spec(**fields: object) -> RunSpec:
    return RunSpec.model_validate(fields)


@pytest.mark.parametrize("dataset", ["noisy_xor", "regression_1d"])
def test_shapes_follow_the_split_and_the_catalog(dataset: str) -> None:
    splits = make_splits(spec(dataset=dataset, n_samples=1000, val_fraction=0.1, test_fraction=0.3))
    dim = CATALOG[spec(dataset=dataset).dataset].input_dim
    assert splits.train_x.shape == (600, dim) and splits.train_y.shape == (600,)
    assert splits.val_x.shape == (100, dim) and splits.val_y.shape == (100,)
    assert splits.test_x.shape == (300, dim) and splits.test_y.shape == (300,)
    assert splits.train_x.dtype == np.float32 and splits.train_y.dtype == np.float32


def test_default_split_is_1200_400_400() -> None:
    sizes = spec().split_sizes
    assert (sizes.train, sizes.val, sizes.test) == (1200, 400, 400)


@pytest.mark.parametrize("dataset", ["noisy_xor", "regression_1d"])
def test_same_spec_same_data_other_seed_other_data(dataset: str) -> None:
    first, again = make_splits(spec(dataset=dataset, seed=7)), make_splits(spec(dataset=dataset, seed=7))
    other = make_splits(spec(dataset=dataset, seed=8))
    for name in ("train_x", "train_y", "val_x", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.train_x, other.train_x)


def test_xor_points_sit_on_four_centres_with_xor_labels() -> None:
    clean = make_splits(spec(noise=0.0, n_samples=4000))
    points = np.concatenate([clean.train_x, clean.val_x, clean.test_x])
    labels = np.concatenate([clean.train_y, clean.val_y, clean.test_y])
    assert set(map(tuple, points.tolist())) == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}
    np.testing.assert_array_equal(labels, np.logical_xor(points[:, 0], points[:, 1]).astype(np.float32))
    assert clean.task is Task.classification


def test_xor_centres_are_equally_likely_and_labels_balanced() -> None:
    splits = make_splits(spec(noise=0.0, n_samples=40_000))
    points = np.concatenate([splits.train_x, splits.val_x, splits.test_x])
    _, counts = np.unique(points, axis=0, return_counts=True)
    assert np.all(np.abs(counts / len(points) - 0.25) < 0.01)
    assert abs(splits.train_y.mean() - 0.5) < 0.02


def test_xor_noise_is_gaussian_with_std_noise() -> None:
    noisy = make_splits(spec(noise=0.3, n_samples=40_000, seed=3))
    clean = make_splits(spec(noise=0.0, n_samples=40_000, seed=3))
    # Same seed, same centres and draws: the difference is the noise alone.
    residual = noisy.train_x - clean.train_x
    assert abs(residual.std() - 0.3) < 0.01 and abs(residual.mean()) < 0.01
    np.testing.assert_array_equal(noisy.train_y, clean.train_y)


def test_regression_is_standardised_with_the_training_statistics() -> None:
    run = spec(dataset="regression_1d", n_samples=500, noise=0.2, seed=11)
    splits = make_splits(run)
    # An independent reading of the contract: same generator stream, then split, then scale by train stats.
    rng = np.random.default_rng([run.seed, DATA_STREAM])
    x = np.linspace(-3, 3, 500)
    y = 0.5 * np.sin(3 * x) + x + 0.2 * rng.standard_normal(500)
    order = rng.permutation(500)
    train, val, test = order[:300], order[300:400], order[400:]
    x_mean, x_std, y_mean, y_std = x[train].mean(), x[train].std(), y[train].mean(), y[train].std()
    np.testing.assert_allclose(splits.train_x[:, 0], (x[train] - x_mean) / x_std, atol=1e-5)
    np.testing.assert_allclose(splits.val_y, (y[val] - y_mean) / y_std, atol=1e-5)
    np.testing.assert_allclose(splits.test_x[:, 0], (x[test] - x_mean) / x_std, atol=1e-5)
    assert abs(splits.train_x.mean()) < 1e-5 and abs(splits.train_x.std() - 1) < 1e-5
    assert abs(splits.train_y.mean()) < 1e-5 and abs(splits.train_y.std() - 1) < 1e-5
    assert splits.task is Task.regression


def test_regression_noise_free_curve() -> None:
    x, y = regression_1d(7, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(x[:, 0], [-3, -2, -1, 0, 1, 2, 3])
    np.testing.assert_allclose(y, 0.5 * np.sin(3 * x[:, 0]) + x[:, 0], rtol=1e-6)
