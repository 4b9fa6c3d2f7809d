"""The API's request and response models. ORM objects never leave app/services; these do."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, model_validator

from app.core.config import get_settings
from app.models import RunStatus
from app.services.datasets import CATALOG, DatasetName, Task


class Activation(StrEnum):
    tanh = "tanh"
    relu = "relu"
    sigmoid = "sigmoid"
    gelu = "gelu"


class OptimizerName(StrEnum):
    adam = "adam"
    sgd = "sgd"


class DeviceName(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class SplitSizes(BaseModel):
    train: int = Field(description="Training points.")
    val: int = Field(description="Validation points.")
    test: int = Field(description="Test points.")


class RunSpec(BaseModel):
    """What to train. Every field is optional; the defaults are the classic noisy-XOR study's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetName = Field(DatasetName.noisy_xor, description="Which data generator to train on.")
    n_samples: int = Field(
        2000, ge=10, le=1_000_000, description="Total points, split into train, validation and test."
    )
    val_fraction: float = Field(0.2, gt=0, le=0.5, description="Share of n_samples kept for validation.")
    test_fraction: float = Field(0.2, gt=0, le=0.5, description="Share of n_samples kept for testing.")
    noise: float = Field(0.1, ge=0, le=10, description="Standard deviation of the Gaussian noise.")
    depth: int = Field(1, ge=0, le=16, description="Hidden layers; 0 is logistic or linear regression.")
    width: int = Field(3, ge=1, le=1024, description="Units in each hidden layer.")
    activation: Activation = Field(Activation.tanh, description="Activation of the hidden layers.")
    optimizer: OptimizerName = Field(OptimizerName.adam, description="Optimizer.")
    lr: float = Field(0.01, gt=0, le=10, description="Learning rate.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 weight decay.")
    batch_size: int = Field(64, ge=1, description="Mini-batch size, at most the training split's size.")
    epochs: int = Field(100, ge=1, le=10_000, description="Full passes over the training split.")
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="Seeds data, initialisation and shuffling: same spec, same history.",
    )
    device: DeviceName = Field(DeviceName.auto, description="auto trains on CUDA when the worker has it.")

    @property
    def task(self) -> Task:
        return CATALOG[self.dataset].task

    @property
    def input_dim(self) -> int:
        return CATALOG[self.dataset].input_dim

    @property
    def split_sizes(self) -> SplitSizes:
        n_val = max(1, round(self.n_samples * self.val_fraction))
        n_test = max(1, round(self.n_samples * self.test_fraction))
        return SplitSizes(train=self.n_samples - n_val - n_test, val=n_val, test=n_test)

    @property
    def num_params(self) -> int:
        """Weights and biases of the network: input -> depth x width -> 1 output."""
        widths = [self.input_dim] + [self.width] * self.depth + [1]
        return sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(widths, widths[1:], strict=False))

    @property
    def cost(self) -> int:
        """The work a run asks for: n_train x epochs x parameters."""
        return self.split_sizes.train * self.epochs * self.num_params

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> "RunSpec":
        """Load a spec the database holds; the budget it passed when accepted is not applied again."""
        return cls.model_validate(data, context={"stored": True})

    @model_validator(mode="after")
    def _check_sizes_and_budget(self, info: ValidationInfo) -> Self:
        sizes = self.split_sizes
        if sizes.train < 1:
            raise ValueError(
                f"n_samples {self.n_samples} leaves no training points after validation ({sizes.val}) "
                f"and test ({sizes.test}); lower val_fraction or test_fraction, or raise n_samples"
            )
        if self.batch_size > sizes.train:
            raise ValueError(
                f"batch_size {self.batch_size} exceeds the training split's {sizes.train} points "
                f"(n_samples {self.n_samples} minus {sizes.val} validation and {sizes.test} test); "
                f"batch_size must be between 1 and {sizes.train}"
            )
        budget = get_settings().compute_budget
        if self.cost > budget and not (info.context or {}).get("stored"):
            raise ValueError(
                f"the run's work n_train x epochs x parameters = {sizes.train} x {self.epochs} x "
                f"{self.num_params} = {self.cost:.3g} exceeds the compute budget of {budget:.3g}; "
                "lower n_samples, epochs, depth or width"
            )
        return self


Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
RunName = Annotated[str, StringConstraints(max_length=200)]


class RunCreate(RunSpec):
    """A run spec, flat, plus an optional name and tags."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{}, {"depth": 2, "width": 3, "seed": 1, "name": "xor-d2w3", "tags": ["xor"]}]
        },
    )

    name: RunName | None = Field(None, description="A label of your choosing.", examples=["xor-d2w3"])
    tags: list[Tag] = Field(
        default_factory=list, max_length=32, description="Labels to filter runs by.", examples=[["xor"]]
    )

    def spec(self) -> RunSpec:
        return RunSpec.model_validate(self.model_dump(exclude={"name", "tags"}))


class Progress(BaseModel):
    """How far a run has come."""

    epoch: int = Field(description="Epochs completed and recorded.", examples=[42])
    epochs: int = Field(description="Epochs the run will train.", examples=[100])


class RunSummary(BaseModel):
    """The run's results so far; test metrics once the last epoch is done."""

    train_loss: float | None = Field(None, description="Mean mini-batch loss of the last epoch.")
    val_loss: float | None = Field(None, description="Validation loss after the last epoch.")
    best_val_loss: float | None = Field(None, description="Lowest validation loss of any epoch.")
    best_epoch: int | None = Field(None, description="The epoch (1-based) with the lowest validation loss.")
    test_loss: float | None = Field(None, description="Test loss with the final weights.")
    val_accuracy: float | None = Field(None, description="Validation accuracy after the last epoch.")
    test_accuracy: float | None = Field(None, description="Test accuracy with the final weights.")
    num_params: int | None = Field(None, description="Weights and biases in the network.", examples=[13])
    duration_s: float | None = Field(None, description="Seconds of training, data generation included.")


class RunPublic(BaseModel):
    id: int = Field(description="The run's id.", examples=[1])
    name: str | None = Field(description="The run's label, if given.", examples=["xor-d2w3"])
    tags: list[str] = Field(description="The run's tags.", examples=[["xor"]])
    status: RunStatus = Field(description="queued -> running -> succeeded | failed | cancelled | pruned.")
    spec: RunSpec = Field(description="The spec as accepted, defaults filled in.")
    sweep_id: int | None = Field(description="The sweep the run belongs to, if any.")
    progress: Progress = Field(description="Epochs done out of epochs planned.")
    summary: RunSummary | None = Field(description="Results so far; null until the first flush.")
    device: str | None = Field(description="Where it trained, such as cpu or cuda:0.", examples=["cpu"])
    worker: str | None = Field(description="The worker that claimed it.", examples=["sweepyard@host"])
    error: str | None = Field(description="Why it failed, when it did.")
    created_at: datetime = Field(description="When the run was queued (UTC).")
    started_at: datetime | None = Field(description="When a worker claimed it (UTC).")
    finished_at: datetime | None = Field(description="When it ended, whatever the end (UTC).")


class RunsPublic(BaseModel):
    data: list[RunPublic] = Field(description="The runs on this page, newest first.")
    count: int = Field(description="Runs matching the filters, before limit and offset.", examples=[1])


class MetricKey(StrEnum):
    train_loss = "train_loss"
    val_loss = "val_loss"
    best_val_loss = "best_val_loss"
    val_accuracy = "val_accuracy"


class MetricsPublic(BaseModel):
    """A run's history, one list per metric, aligned with `epoch`."""

    run_id: int = Field(description="The run's id.", examples=[1])
    epoch: list[int] = Field(description="Epoch numbers, 1-based.", examples=[[1, 2, 3]])
    train_loss: list[float] | None = Field(
        None, description="Mean mini-batch training loss of each epoch.", examples=[[0.69, 0.61, 0.52]]
    )
    val_loss: list[float] | None = Field(
        None, description="Validation loss after each epoch.", examples=[[0.67, 0.58, 0.49]]
    )
    best_val_loss: list[float] | None = Field(
        None, description="Lowest validation loss up to each epoch.", examples=[[0.67, 0.58, 0.49]]
    )
    val_accuracy: list[float | None] | None = Field(
        None, description="Null entries for regression runs.", examples=[[0.55, 0.71, 0.9]]
    )


class PredictionsPublic(BaseModel):
    """The test split and the trained model's outputs on it."""

    run_id: int = Field(description="The run's id.", examples=[1])
    task: Task = Field(description="classification or regression.")
    count: int = Field(description="Points in the test split.", examples=[400])
    offset: int = Field(description="Index of the first point returned.", examples=[0])
    inputs: list[list[float]] = Field(
        description="Model inputs (standardised for regression_1d).", examples=[[[0.98, 0.05]]]
    )
    targets: list[float] = Field(description="Labels (0/1) or regression targets.", examples=[[1.0]])
    predictions: list[float] = Field(
        description="Probability of label 1 for classification; the predicted value for regression.",
        examples=[[0.97]],
    )


class DatasetPublic(BaseModel):
    name: DatasetName = Field(description="The value for a spec's `dataset`.")
    task: Task = Field(description="classification (BCE on logits) or regression (MSE).")
    input_dim: int = Field(description="Input features per point.", examples=[2])
    description: str = Field(description="How the points are made.")


class Health(BaseModel):
    status: str = Field(description="ok while the process answers.", examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(description="ok when every dependency answers, else unavailable.", examples=["ok"])
    checks: dict[str, str] = Field(
        description="Each dependency and what it said.", examples=[{"database": "ok", "broker": "ok"}]
    )
