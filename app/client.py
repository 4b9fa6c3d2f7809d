"""A Python client for the Sweepyard HTTP API, with a Server-Sent Events reader that reconnects.

The `sweepyard` client commands are built on it; it prints nothing and knows nothing of the terminal.
"""

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

API_PREFIX = "/api/v1"
FINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "pruned"})


class ClientError(Exception):
    """Something a person has to act on; the message says what."""


class ServerUnreachable(ClientError):
    """No answer from the API: it is not running, the URL is wrong, or the connection kept dropping."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the Sweepyard API at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(ClientError):
    """The API answered with an error status; `detail` is FastAPI's `detail` (a string or a list)."""

    def __init__(self, status_code: int, detail: Any, request: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        # "GET /api/v1/...": a bare 404 "Not Found" means little without the path it was about.
        self.request = request
        super().__init__(f"{status_code}: " + "; ".join(self.messages()))

    def messages(self) -> list[str]:
        """One line per problem: a 422's validation errors as "loc: msg", anything else as given."""
        if isinstance(self.detail, list):
            lines = []
            for error in self.detail:
                if isinstance(error, Mapping) and "msg" in error:
                    lines.append(f"{_location(error.get('loc'))}: {error['msg']}")
                else:
                    lines.append(str(error))
            return lines or ["(no detail)"]
        return [str(self.detail)]


def _location(loc: Any) -> str:
    parts = [str(part) for part in loc] if isinstance(loc, list | tuple) else [str(loc)]
    # The request body is the spec or config the user wrote: its fields read better without "body.".
    if len(parts) > 1 and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "request"


def api_error(response: httpx.Response) -> ApiError:
    """The error a (read) error response stands for; its body may not even be JSON (a proxy's page)."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip()[:500] or response.reason_phrase
    return ApiError(response.status_code, detail, f"{response.request.method} {response.request.url.path}")


# --- Server-Sent Events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    # The last `id:` the stream has given, this event's or an earlier one's, as the SSE standard says.
    id: str | None = None
    retry_ms: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Events from the lines of a text/event-stream, after the WHATWG rules: `field: value` lines, one
    space after the colon dropped; a blank line dispatches; comments (":") and unknown fields ignored; an
    event without data is not dispatched; an unterminated last event is dropped (the connection broke)."""
    event_type = ""
    data: list[str] = []
    last_id: str | None = None
    retry_ms: int | None = None
    for line in lines:
        if not line:
            if data:
                yield ServerSentEvent(event_type or "message", "\n".join(data), last_id, retry_ms)
            event_type, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            # A NUL would let a server smuggle an id a later request header cannot carry.
            if "\0" not in value:
                last_id = value
        elif field == "retry" and value.isdigit():
            retry_ms = int(value)


# --- the client ----------------------------------------------------------------------------------------


class SweepyardClient:
    """The API's endpoints as methods returning decoded JSON; errors as ServerUnreachable or ApiError."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        stream_read_timeout: float = 60.0,
        reconnect_tries: int = 5,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX, headers=headers, timeout=timeout, transport=transport
        )
        self.stream_read_timeout = stream_read_timeout
        self.reconnect_tries = reconnect_tries
        self.backoff_s = backoff_s
        self._sleep = sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; a transport failure or an error status becomes a ClientError."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, _reason(exc)) from exc
        if response.is_error:
            raise api_error(response)
        return response

    # runs

    def create_run(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", "/runs", json=dict(spec)).json())

    def get_run(self, run_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/runs/{run_id}").json())

    def list_runs(
        self,
        *,
        status: str | None = None,
        sweep_id: int | None = None,
        tag: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        if sweep_id is not None:
            params["sweep_id"] = sweep_id
        if tag is not None:
            params["tag"] = tag
        return dict(self.request("GET", "/runs", params=params).json())

    def cancel_run(self, run_id: int) -> dict[str, Any]:
        return dict(self.request("POST", f"/runs/{run_id}/cancel").json())

    # sweeps

    def create_sweep(self, config_text: str) -> dict[str, Any]:
        """Create a sweep from its YAML (or JSON, which is YAML too) as written: the server parses it, so
        its errors point into the file the user wrote."""
        response = self.request(
            "POST", "/sweeps", content=config_text.encode(), headers={"Content-Type": "application/yaml"}
        )
        return dict(response.json())

    def get_sweep(self, sweep_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/sweeps/{sweep_id}").json())

    def cancel_sweep(self, sweep_id: int) -> dict[str, Any]:
        return dict(self.request("POST", f"/sweeps/{sweep_id}/cancel").json())

    def sweep_table(
        self, sweep_id: int, *, rows: str | None = None, cols: str | None = None, metric: str | None = None
    ) -> dict[str, Any]:
        params = _given(rows=rows, cols=cols, metric=metric)
        return dict(self.request("GET", f"/sweeps/{sweep_id}/table", params=params).json())

    def sweep_table_text(
        self,
        sweep_id: int,
        *,
        format: str,
        rows: str | None = None,
        cols: str | None = None,
        metric: str | None = None,
    ) -> str:
        """The table as the server renders it: format is csv or markdown."""
        params = {**_given(rows=rows, cols=cols, metric=metric), "format": format}
        return self.request("GET", f"/sweeps/{sweep_id}/table", params=params).text

    # plots

    def plot(
        self,
        kind: str,
        ext: str,
        *,
        run_id: int | None = None,
        sweep_id: int | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> bytes:
        """A run's or a sweep's plot as image bytes; ext is png, svg or gif."""
        if (run_id is None) == (sweep_id is None):
            raise ValueError("give exactly one of run_id and sweep_id")
        owner = f"/runs/{run_id}" if run_id is not None else f"/sweeps/{sweep_id}"
        # Rendering (an animation above all) can take far longer than a JSON read.
        response = self.request(
            "GET", f"{owner}/plots/{kind}.{ext}", params=dict(params or {}), timeout=timeout
        )
        return response.content

    # events

    def run_events(
        self, run_id: int, *, on_reconnect: Callable[[int, str], None] | None = None
    ) -> Iterator[ServerSentEvent]:
        """A run's events (`run`, `epoch`) until the `run` event with a final status."""
        return self.events(f"/runs/{run_id}/events", until=_run_ended, on_reconnect=on_reconnect)

    def sweep_events(
        self, sweep_id: int, *, on_reconnect: Callable[[int, str], None] | None = None
    ) -> Iterator[ServerSentEvent]:
        """A sweep's events (`sweep`, `run`) until the `sweep` event whose status is not running."""
        return self.events(f"/sweeps/{sweep_id}/events", until=_sweep_ended, on_reconnect=on_reconnect)

    def events(
        self,
        path: str,
        *,
        until: Callable[[ServerSentEvent], bool],
        last_event_id: str | None = None,
        on_reconnect: Callable[[int, str], None] | None = None,
    ) -> Iterator[ServerSentEvent]:
        """Follow an event stream until the server closes it right after an event for which `until` is
        true, reconnecting with Last-Event-ID when the connection drops (or closes after any other event),
        with a doubling backoff.

        Failing to connect at all raises ServerUnreachable at once: then the server is simply not there.
        After `reconnect_tries` failures in a row without an event in between, it raises too.
        """
        failures = 0
        connected = False
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            # Keep-alive comments arrive well within the read timeout; silence longer than it is a dead
            # connection, which the reconnect below replaces.
            timeout = httpx.Timeout(self._http.timeout.connect, read=self.stream_read_timeout)
            ended = False
            try:
                with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                    if response.is_error:
                        response.read()
                        error = api_error(response)
                        # A server restarting or a database away (5xx) is worth another try; a wrong id
                        # or a missing token (4xx) is not.
                        if error.status_code < 500 or not connected:
                            raise error
                        raise _Retry(f"the server answered {error}")
                    connected = True
                    # Not a return at the first final event: a stream opens with the current state, which
                    # for something already ended is final too, and the history that follows it counts.
                    # The server closes the stream after the last one.
                    for event in parse_sse(response.iter_lines()):
                        last_event_id = event.id if event.id is not None else last_event_id
                        failures = 0
                        ended = until(event)
                        yield event
                if ended:
                    return
                reason = "the stream closed before the end"
            except httpx.TransportError as exc:
                if not connected:
                    raise ServerUnreachable(self.url, _reason(exc)) from exc
                if ended:
                    return  # dropped while closing: nothing was left to come
                reason = _reason(exc)
            except _Retry as exc:
                reason = str(exc)
            failures += 1
            if failures > self.reconnect_tries:
                raise ServerUnreachable(
                    self.url, f"the event stream {path} kept dropping ({failures} tries; last: {reason})"
                )
            if on_reconnect is not None:
                on_reconnect(failures, reason)
            self._sleep(min(self.backoff_s * 2 ** (failures - 1), 10.0))


class _Retry(Exception):
    pass


def _given(**params: str | None) -> dict[str, str]:
    return {key: value for key, value in params.items() if value is not None}


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_ended(event: ServerSentEvent) -> bool:
    return event.event == "run" and event.json().get("status") in FINAL_RUN_STATUSES


def _sweep_ended(event: ServerSentEvent) -> bool:
    return event.event == "sweep" and event.json().get("status") != "running"
