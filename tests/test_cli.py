"""The `sweepyard` client commands against a live `sweepyard up`, and the client's SSE reader on its own."""

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import cli
from app.client import ApiError, ServerSentEvent, ServerUnreachable, SweepyardClient, parse_sse
from app.core.config import get_settings
from tests.test_end_to_end import SWEEPYARD, embedded_env, free_port, sweepyard_up

Invoke = Callable[..., Result]

SWEEP_YAML = """\
name: cli-grid
method: grid
metric: {name: test_loss, goal: minimize}
parameters:
  depth: {values: [0, 1]}
  width: {values: [2, 3]}
base: {n_samples: 400, epochs: 20, batch_size: 32}
repeats: 2
"""


# --- the SSE reader and the client, no server ----------------------------------------------------------


def lines_of(raw: bytes) -> Iterator[str]:
    return httpx.Response(200, content=raw).iter_lines()


def test_parse_sse_reads_a_literal_event_stream() -> None:
    raw = (
        b": keep-alive\r\n"
        b"\r\n"
        b"event: run\r\n"
        b"id: 0\r\n"
        b'data: {"id": 1,\r\n'
        b'data:  "status": "queued"}\r\n'
        b"\r\n"
        b"event: epoch\n"
        b"id: 1\n"
        b"data:no space\n"
        b"unknown: ignored\n"
        b"\n"
        b"event: nothing\n"  # no data: not dispatched
        b"\n"
        b"data\n"  # a field name alone is an empty value
        b"retry: 1500\n"
        b"\n"
        b"event: cut\n"
        b"data: the connection broke here\n"
    )
    events = list(parse_sse(lines_of(raw)))
    assert events == [
        ServerSentEvent("run", '{"id": 1,\n "status": "queued"}', "0"),
        ServerSentEvent("epoch", "no space", "1"),
        # The id carries over to later events until another arrives, as the SSE standard says.
        ServerSentEvent("message", "", "1", retry_ms=1500),
    ]
    assert events[0].json() == {"id": 1, "status": "queued"}


class DroppingStream(httpx.SyncByteStream):
    """Sends its chunks, then breaks as a dropped connection does."""

    def __init__(self, chunks: list[bytes], drop: bool) -> None:
        self.chunks, self.drop = chunks, drop

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.drop:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def run_event(status: str, epoch: int) -> bytes:
    return f'event: run\nid: {epoch}\ndata: {{"status": "{status}"}}\n\n'.encode()


def epoch_event(epoch: int) -> bytes:
    return f'event: epoch\nid: {epoch}\ndata: {{"epoch": {epoch}}}\n\n'.encode()


def test_events_reconnect_with_last_event_id_after_a_dropped_connection() -> None:
    asked: list[str | None] = []

    def serve(request: httpx.Request) -> httpx.Response:
        last = request.headers.get("Last-Event-ID")
        asked.append(last)
        if last is None:
            stream = DroppingStream([run_event("running", 0), epoch_event(1), epoch_event(2)], drop=True)
        elif len(asked) == 2:
            stream = DroppingStream([], drop=True)  # the server is still restarting
        else:
            chunks = [run_event("running", 2), epoch_event(3), run_event("succeeded", 3)]
            stream = DroppingStream(chunks, drop=False)
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=stream)

    slept: list[float] = []
    with SweepyardClient(
        "http://sweepyard.test", transport=httpx.MockTransport(serve), backoff_s=0.5, sleep=slept.append
    ) as client:
        events = list(client.events("/runs/1/events", until=lambda e: e.json().get("status") == "succeeded"))
        got = [(event.event, event.id) for event in events]
        assert got == [
            ("run", "0"),
            ("epoch", "1"),
            ("epoch", "2"),
            ("run", "2"),
            ("epoch", "3"),
            ("run", "3"),
        ]
        assert asked == [None, "2", "2"]
        assert slept == [0.5, 1.0], "the backoff doubles while no event arrives"


def test_events_give_up_when_the_stream_keeps_dropping_without_an_event() -> None:
    first = True

    def serve(request: httpx.Request) -> httpx.Response:
        nonlocal first
        chunks, first = ([run_event("running", 0)] if first else []), False
        return httpx.Response(200, stream=DroppingStream(chunks, drop=True))

    retries: list[int] = []
    transport = httpx.MockTransport(serve)
    with SweepyardClient(
        "http://sweepyard.test", transport=transport, reconnect_tries=2, sleep=print
    ) as client:
        with pytest.raises(ServerUnreachable, match="kept dropping") as raised:
            for _ in client.events(
                "/runs/1/events", until=lambda e: False, on_reconnect=lambda n, _: retries.append(n)
            ):
                pass
    assert retries == [1, 2]
    assert "RemoteProtocolError" in str(raised.value)

    # Refused at the first try: no server there, no point in retrying.
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with SweepyardClient("http://sweepyard.test", transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ServerUnreachable, match="connection refused"):
            next(client.run_events(1))


def test_a_client_error_keeps_the_detail_and_lists_a_422() -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        detail = [{"loc": ["body", "depth"], "msg": "Input should be less than or equal to 16"}]
        return httpx.Response(422, json={"detail": detail})

    with SweepyardClient("http://sweepyard.test", transport=httpx.MockTransport(serve)) as client:
        with pytest.raises(ApiError) as raised:
            client.create_run({"depth": 99})
    assert raised.value.messages() == ["depth: Input should be less than or equal to 16"]
    assert raised.value.request == "POST /api/v1/runs"


def test_plot_refuses_a_gif_of_anything_but_the_boundary(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plot", "1", "-o", str(tmp_path / "loss.gif")])
    assert result.exit_code == 2 and "boundary" in result.output
    result = CliRunner().invoke(cli, ["plot", "1", "--kind", "heatmap", "-o", str(tmp_path / "h.png")])
    assert result.exit_code == 2 and "--sweep" in result.output


# --- the commands against a live server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `sweepyard up` for the module: starting one takes seconds."""
    folder = tmp_path_factory.mktemp("cli")
    with sweepyard_up(embedded_env(folder), folder / "up.log") as (client, _):
        yield str(client.base_url)


def cli_runner(url: str, monkeypatch: pytest.MonkeyPatch, token: str | None = None) -> Invoke:
    monkeypatch.setenv("SWEEPYARD_URL", url)
    if token is None:
        monkeypatch.delenv("SWEEPYARD_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("SWEEPYARD_API_TOKEN", token)
    # Wide enough that rich tables do not wrap the cells the tests look for.
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input)

    return invoke


@pytest.fixture
def sweepyard(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    yield cli_runner(server, monkeypatch)
    get_settings.cache_clear()


def created_id(result: Result, what: str) -> int:
    assert result.exit_code == 0, result.output
    found = re.search(rf"^{what} (\d+)", result.output, re.MULTILINE)
    assert found, result.output
    return int(found.group(1))


@pytest.mark.e2e
def test_submit_then_watch_to_the_end(sweepyard: Invoke, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("epochs: 30\ndepth: 1\nwidth: 3\n")
    submitted = sweepyard("submit", str(spec), "--name", "cli-run", "--tag", "cli", "--tag", "xor")
    run_id = created_id(submitted, "run")
    assert "queued" in submitted.output and f"sweepyard watch {run_id}" in submitted.output

    watched = sweepyard("watch", str(run_id))
    assert watched.exit_code == 0, watched.output
    assert "30/30" in watched.output
    summary = watched.output.strip().splitlines()[-1]
    assert summary.startswith(f"run {run_id} succeeded")
    assert all(key in summary for key in ("best_val_loss", "test_loss", "test_accuracy")), summary

    listed = sweepyard("runs", "--tag", "cli", "--status", "succeeded")
    assert listed.exit_code == 0, listed.output
    assert re.search(rf"{run_id} .*cli-run .*succeeded .*30/30 .*noisy_xor", listed.output), listed.output


@pytest.mark.e2e
def test_submit_from_stdin_with_watch_and_a_json_spec(sweepyard: Invoke) -> None:
    result = sweepyard("submit", "-", "--watch", input='{"epochs": 5, "dataset": "regression_1d"}')
    assert result.exit_code == 0, result.output
    assert re.search(r"run \d+ succeeded: epoch 5/5, best_val_loss \S+, test_loss", result.output)
    assert "test_accuracy" not in result.output, "regression runs have no accuracy"


@pytest.mark.e2e
def test_sweep_watch_table_and_runs(sweepyard: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(SWEEP_YAML)
    created = sweepyard("sweep", str(config))
    sweep_id = created_id(created, "sweep")
    assert "(grid): 8 runs planned" in created.output

    watched = sweepyard("watch", str(sweep_id), "--sweep")
    assert watched.exit_code == 0, watched.output
    assert "8/8" in watched.output
    assert f"sweep {sweep_id} finished: 8 runs" in watched.output
    assert re.search(r"best run: \d+, test_loss \S+ \(depth=\d, width=\d\)", watched.output)

    table = sweepyard("table", str(sweep_id), "--rows", "depth", "--cols", "width")
    assert table.exit_code == 0, table.output
    assert "test_loss" in table.output and "depth \\ width" in table.output
    rows = [line for line in table.output.splitlines() if re.match(r"^\W*[01]\s", line)]
    assert len(rows) == 2 and all(row.count("±") == 2 and row.count("(2)") == 2 for row in rows), table.output

    csv = sweepyard("table", str(sweep_id), "--rows", "depth", "--cols", "width", "--format", "csv")
    assert csv.exit_code == 0 and csv.output.splitlines()[0] == "depth,width,mean,std,n", csv.output
    assert len(csv.output.splitlines()) == 5
    markdown = sweepyard("table", str(sweep_id), "--rows", "depth", "--metric", "val_loss", "-f", "markdown")
    assert markdown.output.startswith("| depth \\ width |") and "val_loss" in markdown.output

    listed = sweepyard("runs", "--sweep", str(sweep_id), "--limit", "100")
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("succeeded") == 8 and "8 of 8 runs" in listed.output

    heatmap, bars = tmp_path / "heatmap.png", tmp_path / "importance.svg"
    drawn = sweepyard(
        "plot", str(sweep_id), "--sweep", "-o", str(heatmap), "--rows", "depth", "--cols", "width"
    )
    assert drawn.exit_code == 0, drawn.output
    assert heatmap.read_bytes().startswith(b"\x89PNG")
    drawn = sweepyard("plot", str(sweep_id), "--sweep", "--kind", "importance", "-o", str(bars))
    assert drawn.exit_code == 0, drawn.output
    assert b"<svg" in bars.read_bytes()[:1000]


@pytest.mark.e2e
def test_cancel_a_running_run_then_an_ended_one(sweepyard: Invoke, tmp_path: Path) -> None:
    spec = tmp_path / "long.json"
    spec.write_text('{"epochs": 10000, "batch_size": 8, "n_samples": 4000}')
    run_id = created_id(sweepyard("submit", str(spec)), "run")
    cancelled = sweepyard("cancel", str(run_id))
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output.strip() == f"run {run_id} cancelled"

    watched = sweepyard("watch", str(run_id))
    assert watched.exit_code == 1, watched.output
    assert watched.output.strip().splitlines()[-1].startswith(f"run {run_id} cancelled")

    again = sweepyard("cancel", str(run_id))
    assert again.exit_code == 1
    assert "409" in again.output and "already ended" in again.output
    assert "Traceback" not in again.output


@pytest.mark.e2e
def test_a_bad_spec_prints_each_field_the_server_rejects(sweepyard: Invoke, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("depth: 99\nwidht: 3\n")
    result = sweepyard("submit", str(spec))
    assert result.exit_code == 1
    assert "422" in result.output
    assert "depth: Input should be less than or equal to 16" in result.output
    assert "widht: Extra inputs are not permitted" in result.output

    unknown = sweepyard("watch", "987654")
    assert unknown.exit_code == 1 and "run 987654 not found" in unknown.output


@pytest.mark.e2e
def test_the_client_resumes_a_run_stream_from_last_event_id(server: str, sweepyard: Invoke) -> None:
    run_id = created_id(sweepyard("submit", "-", "--watch", input="epochs: 12\n"), "run")
    with SweepyardClient(server) as client:
        events = list(
            client.events(
                f"/runs/{run_id}/events",
                until=lambda e: e.event == "run" and e.json()["status"] == "succeeded",
                last_event_id="9",
            )
        )
    assert [event.json()["epoch"] for event in events if event.event == "epoch"] == [10, 11, 12]
    assert events[-1].event == "run" and events[-1].id == "12"


@pytest.mark.e2e
def test_plot_writes_the_image_the_server_draws(sweepyard: Invoke, tmp_path: Path) -> None:
    run_id = created_id(sweepyard("submit", "-", "--watch", input="epochs: 10\n"), "run")
    image = tmp_path / "loss.png"
    result = sweepyard("plot", str(run_id), "-o", str(image))
    assert result.exit_code == 0, result.output
    assert image.read_bytes().startswith(b"\x89PNG")
    assert f"wrote {image}" in result.output.replace("\n", "")
    svg = tmp_path / "boundary.svg"
    assert sweepyard("plot", str(run_id), "--kind", "boundary", "-o", str(svg)).exit_code == 0
    assert b"<svg" in svg.read_bytes()[:1000]
    gif = tmp_path / "boundary.gif"
    assert sweepyard("plot", str(run_id), "--kind", "boundary", "-o", str(gif)).exit_code == 0
    assert gif.read_bytes().startswith(b"GIF8")


def test_an_absent_server_gets_a_message_and_exit_code_2(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sweepyard = cli_runner(url, monkeypatch)
    try:
        for args in (["runs"], ["watch", "1"], ["table", "1"]):
            result = sweepyard(*args)
            assert result.exit_code == 2, (args, result.output)
            assert f"cannot reach the Sweepyard API at {url}" in result.output
            assert "make run" in result.output and "Traceback" not in result.output
    finally:
        get_settings.cache_clear()


@contextmanager
def token_server(tmp_path: Path, token: str) -> Iterator[str]:
    """`sweepyard up` with a token; sweepyard_up's readiness probe would get 401 from it."""
    port = free_port()
    env = {**os.environ, **embedded_env(tmp_path), "SWEEPYARD_API_TOKEN": token}
    env |= {"SWEEPYARD_PORT": str(port), "SWEEPYARD_WORKERS": "1"}
    log = tmp_path / "up.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [SWEEPYARD, "up"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                headers = {"Authorization": f"Bearer {token}"}
                if httpx.get(f"{url}/readyz", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise


@pytest.mark.e2e
def test_a_token_server_says_to_set_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        with token_server(tmp_path, "s3cret-token") as url:
            refused = cli_runner(url, monkeypatch)("runs")
            assert refused.exit_code == 1
            assert "401" in refused.output and "Set SWEEPYARD_API_TOKEN" in refused.output

            wrong = cli_runner(url, monkeypatch, token="wrong")("runs")
            assert wrong.exit_code == 1 and "refused it" in wrong.output

            allowed = cli_runner(url, monkeypatch, token="s3cret-token")("runs")
            assert allowed.exit_code == 0, allowed.output
            assert "0 of 0 runs" in allowed.output
    finally:
        get_settings.cache_clear()
