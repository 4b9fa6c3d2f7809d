"""The API's request and response models. ORM objects never leave app/services; these do."""

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

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


class EngineName(StrEnum):
    vectorized = "vectorized"
    reference = "reference"


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
    engine: EngineName = Field(
        EngineName.vectorized,
        description="vectorized trains compatible runs together as one batched model; reference is the "
        "plain per-run PyTorch loop (same numbers to 1e-4).",
    )

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


# --- sweeps -------------------------------------------------------------------------------------------


class SweepMethod(StrEnum):
    grid = "grid"
    random = "random"
    bayes = "bayes"


class Goal(StrEnum):
    minimize = "minimize"
    maximize = "maximize"


class SummaryMetric(StrEnum):
    """Metrics of a run's summary that a sweep can rank, tabulate and explain."""

    test_loss = "test_loss"
    val_loss = "val_loss"
    best_val_loss = "best_val_loss"
    train_loss = "train_loss"
    test_accuracy = "test_accuracy"
    val_accuracy = "val_accuracy"
    best_epoch = "best_epoch"
    num_params = "num_params"
    duration_s = "duration_s"


class Distribution(StrEnum):
    """W&B's distribution names that Sweepyard samples (through Optuna's distributions)."""

    constant = "constant"
    categorical = "categorical"
    int_uniform = "int_uniform"
    uniform = "uniform"
    q_uniform = "q_uniform"
    log_uniform = "log_uniform"
    log_uniform_values = "log_uniform_values"
    q_log_uniform = "q_log_uniform"
    q_log_uniform_values = "q_log_uniform_values"
    inv_log_uniform = "inv_log_uniform"
    inv_log_uniform_values = "inv_log_uniform_values"


FINITE_DISTRIBUTIONS = (Distribution.constant, Distribution.categorical)
INTEGER_FIELDS = frozenset(name for name, field in RunSpec.model_fields.items() if field.annotation is int)


class SweepMetricConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SummaryMetric = Field(
        SummaryMetric.test_loss, description="The summary metric the sweep optimises."
    )
    goal: Goal = Field(Goal.minimize, description="minimize or maximize.")
    target: float | None = Field(None, description="Accepted for W&B compatibility; not used.")


class ParameterConfig(BaseModel):
    """One swept run-spec field: `value`, `values`, or a distribution with `min`/`max` (W&B's keys)."""

    model_config = ConfigDict(extra="forbid")

    value: bool | int | float | str | None = Field(None, description="A constant.")
    values: list[bool | int | float | str] | None = Field(
        None, min_length=1, max_length=1000, description="Choices (categorical; grid takes them all)."
    )
    distribution: Distribution | None = Field(
        None, description="W&B's name; inferred from the other keys when left out."
    )
    min: int | float | None = Field(None, description="Lower bound (an exponent for log_uniform).")
    max: int | float | None = Field(None, description="Upper bound (an exponent for log_uniform).")
    q: int | float | None = Field(None, gt=0, description="Quantisation step for the q_ distributions.")
    probabilities: list[float] | None = Field(None, description="Accepted for W&B compatibility; not used.")

    @model_validator(mode="after")
    def _infer_and_check(self) -> Self:
        given = self.model_fields_set
        if self.distribution is None:
            if "values" in given:
                self.distribution = Distribution.categorical
            elif "value" in given:
                self.distribution = Distribution.constant
            elif self.min is not None and self.max is not None:
                both_int = float(self.min).is_integer() and float(self.max).is_integer()
                self.distribution = Distribution.int_uniform if both_int else Distribution.uniform
            else:
                raise ValueError(
                    "give `value`, `values`, or `min` and `max` (with an optional `distribution`)"
                )
        if self.distribution is Distribution.categorical and not self.values:
            raise ValueError("distribution categorical needs `values`")
        if self.distribution is Distribution.constant and "value" not in given:
            raise ValueError("distribution constant needs `value`")
        if self.distribution not in FINITE_DISTRIBUTIONS:
            if self.min is None or self.max is None:
                raise ValueError(f"distribution {self.distribution} needs `min` and `max`")
            if self.min >= self.max:
                raise ValueError(f"`min` ({self.min}) must be below `max` ({self.max})")
            if self.distribution.startswith("q_"):
                if self.q is None:
                    raise ValueError(f"distribution {self.distribution} needs `q`")
                low, high = self.candidate_values()
                if math.ceil(low / self.q - 1e-9) > math.floor(high / self.q + 1e-9):
                    raise ValueError(f"no multiple of q = {self.q} lies between {low:g} and {high:g}")
            if self.distribution.endswith("_values") and self.min <= 0:
                raise ValueError(f"distribution {self.distribution} needs `min` > 0")
            if self.distribution is Distribution.int_uniform and not (
                float(self.min).is_integer() and float(self.max).is_integer()
            ):
                raise ValueError("distribution int_uniform needs integer `min` and `max`")
        return self

    def candidate_values(self) -> list[Any]:
        """Values that stand for the parameter when checking it against the run spec: all the choices, or
        the ends of the range."""
        if self.distribution is Distribution.constant:
            return [self.value]
        if self.distribution is Distribution.categorical:
            return list(self.values or [])
        assert self.min is not None and self.max is not None
        if self.distribution is Distribution.int_uniform:
            return [int(self.min), int(self.max)]
        if self.distribution in (Distribution.log_uniform, Distribution.q_log_uniform):
            return [math.exp(self.min), math.exp(self.max)]
        if self.distribution is Distribution.inv_log_uniform:
            return [math.exp(-self.max), math.exp(-self.min)]
        if self.distribution is Distribution.inv_log_uniform_values:
            return [1 / self.max, 1 / self.min]
        return [self.min, self.max]


class EarlyTerminate(BaseModel):
    """W&B's hyperband keys: runs are checked at brackets min_iter x eta^k epochs."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["hyperband"] = Field(description="Only hyperband, as in W&B.")
    min_iter: int | None = Field(None, ge=1, description="Epoch of the first bracket.")
    max_iter: int | None = Field(None, ge=1, description="With `s`: the brackets are max_iter / eta^k.")
    eta: int = Field(3, ge=2, description="Keep the best 1/eta at each bracket.")
    s: int | None = Field(None, ge=1, le=20, description="Number of brackets.")
    strict: bool = Field(False, description="Accepted for W&B compatibility; not used.")

    @model_validator(mode="after")
    def _needs_a_start(self) -> Self:
        if self.min_iter is None and (self.max_iter is None or self.s is None):
            raise ValueError("hyperband needs `min_iter`, or `max_iter` with `s`")
        return self

    def brackets(self, epochs: int) -> list[int]:
        """The epochs at which a run of this many epochs is compared with the others."""
        if self.min_iter is not None:
            first, count = self.min_iter, self.s or 64
        else:
            assert self.max_iter is not None and self.s is not None
            first, count = max(1, round(self.max_iter / self.eta**self.s)), self.s
        rungs = []
        for k in range(count):
            epoch = first * self.eta**k
            if epoch >= epochs:
                break
            rungs.append(epoch)
        return rungs


class SweepConfig(BaseModel):
    """A W&B sweep config (name, method, metric, parameters, run_cap, early_terminate), plus `repeats`
    (seeds per configuration) and `base` (fixed spec fields)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "depth-vs-width",
                    "method": "grid",
                    "metric": {"name": "test_loss", "goal": "minimize"},
                    "parameters": {"depth": {"values": [0, 1, 2, 3]}, "width": {"values": [1, 2, 3]}},
                    "base": {"epochs": 100, "batch_size": 64},
                    "repeats": 5,
                }
            ]
        },
    )

    name: RunName | None = Field(None, description="A label of your choosing.", examples=["depth-vs-width"])
    description: str | None = Field(None, max_length=2000, description="Free text.")
    method: SweepMethod = Field(description="grid, random or bayes.")
    metric: SweepMetricConfig = Field(
        default_factory=SweepMetricConfig, description="What ranks the runs (default: minimize test_loss)."
    )
    parameters: dict[str, ParameterConfig] = Field(
        min_length=1, max_length=len(RunSpec.model_fields), description="Run-spec fields to vary."
    )
    base: dict[str, Any] = Field(default_factory=dict, description="Run-spec fields fixed for every run.")
    repeats: int = Field(1, ge=1, le=1000, description="Seeds per configuration: base seed, +1, +2, ...")
    run_cap: int | None = Field(None, ge=1, description="At most this many runs; random and bayes need it.")
    early_terminate: EarlyTerminate | None = Field(None, description="Stop lagging runs (hyperband).")
    seed: int | None = Field(
        None, ge=0, le=2**31 - 1, description="Seeds the sampler; drawn at random when left out."
    )
    program: str | None = Field(None, description="Accepted for W&B compatibility; not used.")
    command: list[str] | None = Field(None, description="Accepted for W&B compatibility; not used.")
    project: str | None = Field(None, description="Accepted for W&B compatibility; not used.")
    entity: str | None = Field(None, description="Accepted for W&B compatibility; not used.")

    @model_validator(mode="after")
    def _check_against_the_run_spec(self) -> Self:
        fields = list(RunSpec.model_fields)
        for name in self.base:
            if name not in fields:
                raise ValueError(f"base.{name} is not a run-spec field; choose from {', '.join(fields)}")
            problem = field_problem(name, self.base[name], self.base)
            if problem:
                raise ValueError(f"base.{name}: {problem}")
        for name, parameter in self.parameters.items():
            if name not in fields:
                raise ValueError(
                    f"parameters.{name} is not a run-spec field; choose from {', '.join(fields)}"
                )
            if name in self.base:
                raise ValueError(f"{name} is both in `base` and in `parameters`; keep one")
            integer_steps = parameter.q is not None and float(parameter.q).is_integer()
            if name in INTEGER_FIELDS and not (
                parameter.distribution in (*FINITE_DISTRIBUTIONS, Distribution.int_uniform)
                or (str(parameter.distribution).startswith("q_") and integer_steps)
            ):
                raise ValueError(
                    f"parameters.{name} is an integer field: use `values`, `value`, int_uniform, or a q_ "
                    f"distribution with a whole-number q, not {parameter.distribution}"
                )
            for value in parameter.candidate_values():
                problem = field_problem(name, value, self.base)
                if problem:
                    raise ValueError(f"parameters.{name}: value {value!r}: {problem}")
        if self.method is SweepMethod.grid:
            for name, parameter in self.parameters.items():
                if parameter.distribution not in FINITE_DISTRIBUTIONS:
                    raise ValueError(
                        f"grid needs finite values, but parameters.{name} has distribution "
                        f"{parameter.distribution}; give it `values`"
                    )
        elif self.run_cap is None:
            raise ValueError(f"method {self.method} needs `run_cap` (the number of runs to make)")
        if self.run_cap is not None and self.run_cap < self.repeats:
            raise ValueError(
                f"run_cap {self.run_cap} is below repeats {self.repeats}: not one configuration fits"
            )
        return self


def field_problem(name: str, value: Any, base: dict[str, Any]) -> str | None:
    """What the run spec says of this one field's value (cross-field rules are checked per run later)."""
    try:
        RunSpec.model_validate({**base, name: value})
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"] == (name,):
                return str(error["msg"])
    return None


class SweepRunCounts(BaseModel):
    queued: int = Field(0, description="Runs waiting for a worker.")
    running: int = Field(0, description="Runs training now.")
    succeeded: int = Field(0, description="Runs that finished.")
    failed: int = Field(0, description="Runs that failed.")
    cancelled: int = Field(0, description="Runs cancelled.")
    pruned: int = Field(0, description="Runs stopped early by early_terminate.")
    total: int = Field(0, description="All runs of the sweep so far.")


class BestRun(BaseModel):
    id: int = Field(description="The run's id.", examples=[7])
    value: float = Field(description="Its value of the sweep metric.", examples=[0.012])
    params: dict[str, Any] = Field(description="Its values of the swept parameters.", examples=[{"depth": 3}])


class SweepPublic(BaseModel):
    id: int = Field(description="The sweep's id.", examples=[1])
    name: str | None = Field(description="The sweep's label.", examples=["depth-vs-width"])
    method: SweepMethod = Field(description="grid, random or bayes.")
    status: Literal["running", "finished", "cancelled"] = Field(
        description="running until every run has ended (and, for bayes, until run_cap runs were made)."
    )
    config: dict[str, Any] = Field(description="The config as accepted, defaults filled in.")
    counts: SweepRunCounts = Field(description="Runs by status.")
    best_run: BestRun | None = Field(description="The best succeeded run by the sweep's metric and goal.")
    created_at: datetime = Field(description="When the sweep was created (UTC).")


class SweepsPublic(BaseModel):
    data: list[SweepPublic] = Field(description="Sweeps, newest first.")
    count: int = Field(description="All sweeps.", examples=[1])


class TableCell(BaseModel):
    row: Any = Field(description="The row parameter's value.", examples=[2])
    col: Any = Field(description="The column parameter's value (null without `cols`).", examples=[3])
    mean: float = Field(description="Mean of the metric over the cell's finished runs.", examples=[0.0123])
    std: float | None = Field(description="Sample standard deviation (ddof=1); null when n < 2.")
    n: int = Field(description="Finished runs in the cell.", examples=[5])


class SweepTable(BaseModel):
    """Mean and std of a metric over the sweep's succeeded runs, by the values of two parameters."""

    sweep_id: int = Field(description="The sweep's id.", examples=[1])
    metric: SummaryMetric = Field(description="The tabulated summary metric.")
    rows: str = Field(description="The parameter whose values make the rows.", examples=["depth"])
    cols: str | None = Field(description="The parameter whose values make the columns.", examples=["width"])
    row_values: list[Any] = Field(description="Row values, sorted.", examples=[[0, 1, 2, 3]])
    col_values: list[Any] = Field(description="Column values, sorted.", examples=[[1, 2, 3]])
    averaged_over: list[str] = Field(
        description="Other varying parameters: each cell averages over their values too.", examples=[["lr"]]
    )
    cells: list[TableCell] = Field(description="One cell per (row, col) pair with finished runs.")


class ParameterImportance(BaseModel):
    name: str = Field(description="The parameter.", examples=["depth"])
    importance: float = Field(description="Share of the metric's variation it explains, in [0, 1].")
    correlation: float | None = Field(
        description="Pearson correlation with the metric; null for non-numeric or constant values."
    )


class SweepImportance(BaseModel):
    sweep_id: int = Field(description="The sweep's id.", examples=[1])
    metric: SummaryMetric = Field(description="The metric explained.")
    goal: Goal = Field(description="Which end of the metric counts as good.")
    evaluator: str = Field(description="How importance was computed.")
    n_runs: int = Field(description="Succeeded runs used.", examples=[40])
    parameters: list[ParameterImportance] = Field(
        description="Every varying parameter, most important first."
    )


class ParallelRow(BaseModel):
    run_id: int = Field(description="The run's id.", examples=[7])
    params: dict[str, Any] = Field(description="Its values of the swept parameters.", examples=[{"depth": 2}])
    value: float | None = Field(description="Its value of the metric.", examples=[0.04])


class SweepParallel(BaseModel):
    """Parallel-coordinates data: one row per finished run."""

    sweep_id: int = Field(description="The sweep's id.", examples=[1])
    metric: SummaryMetric = Field(description="The metric of the last axis.")
    parameters: list[str] = Field(description="The axes, in config order.", examples=[["depth", "width"]])
    data: list[ParallelRow] = Field(description="Succeeded runs, by id.")
