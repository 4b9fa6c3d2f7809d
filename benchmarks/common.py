"""What the benchmark scripts share: a fresh embedded service to time, and an observer that keeps little."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from worker.training.observer import EpochMetrics, RunOutcome, TrainingObserver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_service() -> Iterator[tuple[httpx.Client, float]]:
    """`sweepyard up` on the embedded default in a temporary folder, as `make run` starts it. Yields a
    client and the seconds from start to ready; stops the service with SIGINT afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory() as var_dir:
        env = {
            **os.environ,
            "SWEEPYARD_VAR_DIR": var_dir,
            "SWEEPYARD_DATABASE_URL": "",
            "SWEEPYARD_BROKER_URL": "filesystem://",
            "SWEEPYARD_PORT": str(port),
        }
        started = time.perf_counter()
        service = subprocess.Popen(
            [str(Path(sys.executable).parent / "sweepyard"), "up"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        try:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield client, time.perf_counter() - started
        finally:
            client.close()
            service.send_signal(signal.SIGINT)
            service.wait(timeout=60)


class LossKeeper(TrainingObserver):
    """Keeps each run's test loss, and checks that every run got one."""

    def __init__(self) -> None:
        self.test_losses: dict[int, float] = {}

    def epoch_done(self, run_id: int, metrics: EpochMetrics) -> None:
        pass

    def finished(self, run_id: int, outcome: RunOutcome) -> None:
        assert outcome.summary is not None and outcome.summary["test_loss"] is not None, outcome
        self.test_losses[run_id] = outcome.summary["test_loss"]
