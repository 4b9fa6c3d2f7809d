"""How long the default run takes through the whole service, from POST to succeeded.

Starts `sweepyard up` on the embedded default in a temporary folder (one worker process per core, as
`make run` does), submits the default noisy-XOR run a few times, one after another, and prints the
figures quoted in README. Run it with `make bench`.
"""

import statistics
import time

from benchmarks.common import embedded_service

REPEATS = 5


def main() -> None:
    with embedded_service() as (client, ready_s):
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
