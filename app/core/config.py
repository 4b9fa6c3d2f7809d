"""Every setting Sweepyard reads, from the environment with the prefix SWEEPYARD_."""

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_BROKER = "filesystem://"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWEEPYARD_", extra="ignore")

    var_dir: Path = Field(
        Path("var"), description="Where the embedded default keeps its SQLite file and broker folders."
    )
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means the SQLite file var_dir/sweepyard.db."
    )
    broker_url: str = Field(
        EMBEDDED_BROKER,
        description="Celery broker URL; filesystem:// is the embedded broker that needs no server.",
    )
    queue: str = Field("sweepyard.training", description="The Celery queue that training tasks go to.")
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    api_processes: int = Field(1, ge=1, le=64, description="Processes serving the API (uvicorn workers).")
    workers: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        description="Celery worker processes that `sweepyard up` and `sweepyard worker` start.",
    )
    api_token: SecretStr | None = Field(None, description="Bearer token the API requires when set.")
    allow_unauthenticated: bool = Field(
        False, description="Serve without a token on an address other than loopback (trusted networks only)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed by CORS, as JSON (["https://..."]); none by default.',
    )
    max_body_bytes: int = Field(1_000_000, ge=1, description="Larger request bodies get 413.")
    compute_budget: float = Field(
        1e12, gt=0, description="Largest n_train x epochs x parameters a run spec may ask for."
    )
    sweep_compute_budget: float = Field(
        1e14, gt=0, description="Largest total n_train x epochs x parameters of all a sweep's runs."
    )
    max_sweep_runs: int = Field(10_000, ge=1, description="Most runs one sweep may make.")
    bundle_size: int = Field(
        64, ge=1, description="Most runs of one architecture a worker trains together as one task."
    )
    bayes_in_flight: int = Field(
        4, ge=1, description="Configurations a bayes sweep trains at once before it asks for more."
    )
    metrics_flush_interval_s: float = Field(
        1.0, gt=0, description="How often a worker writes buffered epoch metrics to the database."
    )
    cancel_check_interval_s: float = Field(
        0.05, gt=0, description="How often a worker looks for cancelled runs between epochs."
    )
    checkpoint_interval_s: float = Field(
        5.0, gt=0, description="Seconds of training between a bundle's checkpoints."
    )
    heartbeat_interval_s: float = Field(5.0, gt=0, description="How often a training worker heartbeats.")
    heartbeat_timeout_s: float = Field(
        30.0, gt=0, description="A running run whose heartbeat is older than this goes back to the queue."
    )
    reconcile_interval_s: float = Field(
        15.0,
        gt=0,
        description="How often each worker looks for lost runs (stale or missing from the broker).",
    )
    db_retry_s: float = Field(
        120.0, gt=0, description="How long a worker keeps retrying (with backoff) while the database is away."
    )
    max_attempts: int = Field(3, ge=1, description="Claims of one run before a lost worker fails it.")
    boundary_frames: int = Field(
        30,
        ge=0,
        le=500,
        description="Snapshots of the model's output on a grid that a run keeps through training "
        "(the decision boundary's animation); 0 keeps none.",
    )
    events_poll_interval_s: float = Field(
        0.25, gt=0, description="How often a Server-Sent Events stream looks for new epochs and statuses."
    )
    url: str = Field(
        "http://127.0.0.1:8000", description="Where the `sweepyard` client commands find the API."
    )
    log_level: str = Field("INFO", description="Log level of the API and the workers.")

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_no_token(cls, value: object) -> object:
        # Compose passes SWEEPYARD_API_TOKEN= when unset; an empty token must not become a valid one.
        return None if value == "" else value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'sweepyard.db').resolve()}"

    @property
    def uses_embedded_broker(self) -> bool:
        return self.broker_url.startswith(EMBEDDED_BROKER)

    @property
    def broker_dir(self) -> Path:
        return (self.var_dir / "broker").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()
