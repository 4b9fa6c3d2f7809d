"""How long the default run takes through the whole service, from POST to succeeded.

Starts `sweepyard up` on the embedded default in a temporary folder (one worker process per core, as
`make run` does), submits the default noisy-XOR run a few times, one after another, and prints the
figures quoted in README. Run it with `make bench`.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPEATS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    sweepyard = str(Path(sys.executable).parent / "sweepyard")
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
            [sweepyard, "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        try:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            ready_s = time.perf_counter() - started
            wall, training = [], []
            for _ in range(REPEATS):
                posted = time.perf_counter()
                run_id = client.post("/api/v1/runs", json={}).json()["id"]
                while (run := client.get(f"/api/v1/runs/{run_id}").json())["status"] in ("queued", "running"):
                    time.sleep(0.02)
                assert run["status"] == "succeeded", run
                wall.append(time.perf_counter() - posted)
                training.append(run["summary"]["duration_s"])
            history = client.get(f"/api/v1/runs/{run_id}/metrics").json()
        finally:
            service.send_signal(signal.SIGINT)
            service.wait(timeout=30)

    print(f"service start to ready: {ready_s:.2f} s")
    print(f"default run (noisy_xor, depth 1, width 3, 100 epochs), {REPEATS} runs one after another:")
    spread = f"min {min(wall):.2f}, max {max(wall):.2f}"
    print(f"  POST to succeeded: median {statistics.median(wall):.2f} s ({spread})")
    print(f"  training in the worker: median {statistics.median(training):.2f} s")
    print(
        f"  epochs recorded: {len(history['epoch'])}, final test_loss {run['summary']['test_loss']:.4f}, "
        f"test_accuracy {run['summary']['test_accuracy']:.3f}"
    )


if __name__ == "__main__":
    main()
