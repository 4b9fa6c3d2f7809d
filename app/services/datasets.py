"""The catalog of data sets a run can train on. The generators themselves live in worker/training."""

from dataclasses import dataclass
from enum import StrEnum


class DatasetName(StrEnum):
    noisy_xor = "noisy_xor"
    regression_1d = "regression_1d"


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


@dataclass(frozen=True)
class DatasetInfo:
    name: DatasetName
    task: Task
    input_dim: int
    description: str


CATALOG: dict[DatasetName, DatasetInfo] = {
    DatasetName.noisy_xor: DatasetInfo(
        DatasetName.noisy_xor,
        Task.classification,
        2,
        "Four Gaussian clusters centred at (0,0), (0,1), (1,0) and (1,1), each equally likely, with "
        "standard deviation `noise`; the label is m1 xor m2 of the centre (m1, m2). Binary classification.",
    ),
    DatasetName.regression_1d: DatasetInfo(
        DatasetName.regression_1d,
        Task.regression,
        1,
        "x evenly spaced on [-3, 3], y = 0.5 sin(3x) + x + N(0, noise^2); x and y standardised with the "
        "training split's mean and standard deviation. Regression.",
    ),
}
