"""The `sweepyard` command: `up` runs the whole service; `api`, `worker` and `migrate` run its parts;
`submit`, `sweep`, `watch`, `runs`, `table`, `cancel` and `plot` talk to a running one over HTTP."""

import ipaddress
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.client import FINAL_RUN_STATUSES, ApiError, ServerUnreachable, SweepyardClient
from app.core import migrate as migrations
from app.core.config import get_settings
from app.models import RunStatus
from app.schemas import SummaryMetric

cli = typer.Typer(help="Sweepyard: run and compare small neural-network experiments.", no_args_is_help=True)


def worker_argv(concurrency: int | None = None) -> list[str]:
    settings = get_settings()
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency or settings.workers),
        "--queues",
        settings.queue,
        "--hostname",
        f"sweepyard@{socket.gethostname()}",
        "--loglevel",
        settings.log_level,
    ]
    if settings.uses_embedded_broker:
        # The embedded broker has no broadcast, which these start-up exchanges need.
        argv += ["--without-gossip", "--without-mingle"]
    return argv


def refuse_open_binding() -> None:
    """Without a token the API serves loopback only, unless told to trust the network."""
    settings = get_settings()
    loopback = settings.host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        pass
    if not loopback and settings.api_token is None and not settings.allow_unauthenticated:
        typer.echo(
            f"refusing to serve on {settings.host} without a token: set SWEEPYARD_API_TOKEN, or "
            "SWEEPYARD_ALLOW_UNAUTHENTICATED=true on a trusted network",
            err=True,
        )
        raise typer.Exit(2)


def api_argv() -> list[str]:
    settings = get_settings()
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--log-level",
        settings.log_level.lower(),
        *(["--workers", str(settings.api_processes)] if settings.api_processes > 1 else []),
    ]


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the database schema up to date (Alembic)."""
    migrations.upgrade(revision=revision)


@cli.command()
def api() -> None:
    """Serve the HTTP API (no training happens in this process)."""
    refuse_open_binding()
    os.execv(sys.executable, api_argv())


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Worker processes; default SWEEPYARD_WORKERS.")
    ] = None,
) -> None:
    """Start Celery worker processes that train queued runs."""
    os.execv(sys.executable, worker_argv(concurrency))


@cli.command()
def up() -> None:
    """Migrate, then run the API and the workers in the foreground until Ctrl-C."""
    settings = get_settings()
    refuse_open_binding()
    migrations.upgrade()
    typer.echo(
        f"Sweepyard on http://{settings.host}:{settings.port} (docs at /docs), "
        f"{settings.workers} worker process(es); Ctrl-C stops it."
    )
    # Own process groups: Ctrl-C reaches this process only, which then stops each child its own way.
    children = [
        (subprocess.Popen(api_argv(), start_new_session=True), signal.SIGTERM),
        # SIGQUIT: stop now rather than finish the running runs; they train again on the next start.
        (subprocess.Popen(worker_argv(), start_new_session=True), signal.SIGQUIT),
    ]

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicitly: a shell starting this in the background may have told it to ignore SIGINT.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while all(child.poll() is None for child, _ in children):
            time.sleep(0.5)
        exit_code = 1
        typer.echo("a Sweepyard process exited; stopping the others", err=True)
    except KeyboardInterrupt:
        typer.echo("stopping Sweepyard...")
    for child, how in children:
        if child.poll() is None:
            child.send_signal(how)
    for child, _ in children:
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
    raise typer.Exit(exit_code)


# --- client commands: they talk to a running Sweepyard at SWEEPYARD_URL -------------------------------

STATUS_STYLES = {
    "queued": "dim",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "pruned": "magenta",
    "finished": "green",
}
COUNT_KEYS = ("queued", "running", "succeeded", "failed", "cancelled", "pruned")
RUN_PLOTS = ("loss", "predictions", "boundary")
SWEEP_PLOTS = ("heatmap", "importance", "parallel", "curves")
PLOT_TYPES = ("png", "svg", "gif")


class TableFormat(StrEnum):
    table = "table"
    csv = "csv"
    markdown = "markdown"


class PlotKind(StrEnum):
    loss = "loss"
    predictions = "predictions"
    boundary = "boundary"
    heatmap = "heatmap"
    importance = "importance"
    parallel = "parallel"
    curves = "curves"


def stdout() -> Console:
    # Made per command, not at import: the console binds to the streams of the moment (tests swap them).
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def connected() -> Iterator[SweepyardClient]:
    """A client for SWEEPYARD_URL; the API's refusals and an absent server end the command with a message
    a person can act on (exit code 1 and 2), not a traceback."""
    settings = get_settings()
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    client = SweepyardClient(settings.url, token=token)
    try:
        yield client
    except ServerUnreachable as exc:
        stderr().print(
            f"[red]{escape(str(exc))}[/red]\n"
            "Is Sweepyard running? Start it with `make run` (or `sweepyard up`), "
            "or point SWEEPYARD_URL at it."
        )
        raise typer.Exit(2) from None
    except ApiError as exc:
        report_api_error(exc, token_set=token is not None)
        raise typer.Exit(1) from None
    finally:
        client.close()


def report_api_error(exc: ApiError, *, token_set: bool) -> None:
    console = stderr()
    if exc.status_code == 401:
        hint = (
            "SWEEPYARD_API_TOKEN is set but the server refused it: check it matches the server's token."
            if token_set
            else "Set SWEEPYARD_API_TOKEN to the server's token."
        )
        console.print(f"[red]not authorized (401):[/red] {escape(exc.messages()[0])}\n{hint}")
        return
    lines = exc.messages()
    if exc.status_code == 422:
        console.print("[red]the server rejected the request (422):[/red]")
        for line in lines:
            console.print(f"  {escape(line)}")
        return
    where = f" ({exc.request})" if exc.request else ""
    console.print(f"[red]error {exc.status_code}{escape(where)}:[/red] " + escape("\n".join(lines)))


def read_input(path: str, param: str) -> str:
    """A file's text, or standard input's for "-"."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise typer.BadParameter(f"cannot read {path}: {reason}", param_hint=param) from None


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def styled_status(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, 'default')}]{escape(status)}[/]"


def counts_text(counts: Mapping[str, int]) -> str:
    return " · ".join(f"{key} {counts.get(key, 0)}" for key in COUNT_KEYS)


def finished_count(counts: Mapping[str, int]) -> int:
    return sum(counts.get(key, 0) for key in COUNT_KEYS if key in FINAL_RUN_STATUSES)


def params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={number(value)}" for key, value in params.items())


def best_text(sweep: Mapping[str, Any]) -> str:
    best = sweep.get("best_run")
    metric = sweep.get("config", {}).get("metric", {}).get("name", "metric")
    if not best:
        return "best run: none yet"
    return f"best run: {best['id']}, {metric} {number(best['value'])} ({params_text(best.get('params', {}))})"


def run_summary_line(run: Mapping[str, Any]) -> str:
    summary = run.get("summary") or {}
    progress = run["progress"]
    parts = [f"epoch {progress['epoch']}/{progress['epochs']}"]
    for key in ("best_val_loss", "test_loss", "test_accuracy"):
        if summary.get(key) is not None:
            parts.append(f"{key} {number(summary[key])}")
    if summary.get("duration_s") is not None:
        parts.append(f"{summary['duration_s']:.1f} s")
    line = f"run {run['id']} {styled_status(run['status'])}: " + escape(", ".join(parts))
    if run.get("error"):
        line += f"\n[red]error:[/red] {escape(str(run['error']))}"
    return line


def follow_run(client: SweepyardClient, run_id: int, console: Console) -> int:
    """Show a run's epochs as a progress bar until it ends; 0 if it succeeded, else 1."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(f"run {run_id}", total=None, losses="")

    def reconnecting(attempt: int, reason: str) -> None:
        progress.update(task, description=f"run {run_id} (reconnecting, try {attempt}: {escape(reason)})")

    events = client.run_events(run_id, on_reconnect=reconnecting)
    # The first event before the bar: an unknown run or an absent server shows no empty bar first.
    first = next(events)
    run: dict[str, Any] | None = None
    with progress:
        for event in itertools.chain([first], events):
            data = event.json()
            if event.event == "run":
                run = data
                done = max(data["progress"]["epoch"], int(progress.tasks[0].completed))
                update: dict[str, Any] = {}
                summary = data.get("summary") or {}
                if summary.get("train_loss") is not None:
                    update["losses"] = losses_text(summary)
                progress.update(
                    task,
                    description=f"run {run_id} {styled_status(data['status'])}",
                    total=data["progress"]["epochs"],
                    completed=done,
                    **update,
                )
            elif event.event == "epoch":
                progress.update(task, completed=data["epoch"], losses=losses_text(data))
    # The stream only ends on the run event with a final status (or raises).
    assert run is not None
    console.print(run_summary_line(run))
    return 0 if run["status"] == "succeeded" else 1


def losses_text(metrics: Mapping[str, Any]) -> str:
    text = f"train {number(metrics.get('train_loss'))}  val {number(metrics.get('val_loss'))}"
    if metrics.get("val_accuracy") is not None:
        text += f"  val_acc {number(metrics['val_accuracy'], 3)}"
    return text


class SweepView:
    """The live sweep display: the bar of finished runs, then counts, the best run and the latest change."""

    def __init__(self, sweep_id: int, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs ended"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task(f"sweep {sweep_id}", total=None)
        self.sweep_id = sweep_id
        self.counts = ""
        self.best = ""
        self.latest = ""

    def show_sweep(self, sweep: Mapping[str, Any]) -> None:
        counts = sweep["counts"]
        self.progress.update(
            self.task,
            description=f"sweep {self.sweep_id} {styled_status(sweep['status'])}",
            total=counts["total"],
            completed=finished_count(counts),
        )
        self.counts = counts_text(counts)
        self.best = best_text(sweep)

    def show_run(self, change: Mapping[str, Any]) -> None:
        progress = change.get("progress") or {}
        self.latest = (
            f"latest: run {change['run_id']} {styled_status(change['status'])} "
            f"(epoch {progress.get('epoch', '?')}/{progress.get('epochs', '?')})"
        )

    def __rich__(self) -> RenderableType:
        lines = [Text(self.counts), Text(self.best)] if self.counts else []
        return Group(self.progress, *lines, *([self.latest] if self.latest else []))


def follow_sweep(client: SweepyardClient, sweep_id: int, console: Console) -> int:
    """Show a sweep's runs as they end until the sweep ends; 0 if it finished without failed runs."""
    view = SweepView(sweep_id, console)
    sweep: dict[str, Any] | None = None

    def reconnecting(attempt: int, reason: str) -> None:
        view.latest = f"reconnecting, try {attempt}: {escape(reason)}"

    events = client.sweep_events(sweep_id, on_reconnect=reconnecting)
    first = next(events)
    with Live(view, console=console, refresh_per_second=4):
        for event in itertools.chain([first], events):
            if event.event == "sweep":
                sweep = event.json()
                view.show_sweep(sweep)
            elif event.event == "run":
                view.show_run(event.json())
    if not console.is_terminal:
        # Live ends its last line itself only on a terminal.
        console.line()
    assert sweep is not None
    counts = sweep["counts"]
    console.print(
        f"sweep {sweep_id} {styled_status(sweep['status'])}: {counts['total']} runs "
        f"({escape(counts_text(counts))})"
    )
    console.print(escape(best_text(sweep)))
    return 0 if sweep["status"] == "finished" and counts.get("failed", 0) == 0 else 1


def follow(client: SweepyardClient, what: str, ident: int, console: Console) -> int:
    """Watch a run or a sweep; Ctrl-C stops watching only (the work goes on), exit code 130."""
    try:
        if what == "sweep":
            return follow_sweep(client, ident, console)
        return follow_run(client, ident, console)
    except KeyboardInterrupt:
        stderr().print(
            f"stopped watching; {what} {ident} goes on (`sweepyard cancel {ident}"
            f"{' --sweep' if what == 'sweep' else ''}` stops it)"
        )
        return 130


@cli.command()
def submit(
    spec_file: Annotated[
        str, typer.Argument(metavar="SPEC", help="Run spec file, YAML or JSON; - reads standard input.")
    ],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Name the run.")] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Tag the run; repeat for more tags.")
    ] = None,
    watch_it: Annotated[bool, typer.Option("--watch", "-w", help="Follow the run until it ends.")] = False,
) -> None:
    """Submit a run from a spec file (YAML or JSON) and print its id."""
    try:
        spec = yaml.safe_load(read_input(spec_file, "SPEC"))
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{spec_file} is not valid YAML or JSON: {exc}", param_hint="SPEC") from None
    # An empty file is the all-defaults spec, as an empty JSON object is.
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise typer.BadParameter(
            f"{spec_file} must hold a mapping of spec fields, not a {type(spec).__name__}", param_hint="SPEC"
        )
    if name is not None:
        spec["name"] = name
    if tags:
        given = spec.get("tags") or []
        spec["tags"] = list(dict.fromkeys([*given, *tags]))
    console = stdout()
    with connected() as client:
        run = client.create_run(spec)
        accepted = run["spec"]
        console.print(
            f"run {run['id']} {styled_status(run['status'])}: "
            + escape(
                f"{accepted['dataset']}, depth {accepted['depth']} x width {accepted['width']}, "
                f"{accepted['epochs']} epochs"
            )
        )
        if not watch_it:
            console.print(f"watch it: sweepyard watch {run['id']}")
            return
        code = follow(client, "run", run["id"], console)
    raise typer.Exit(code)


@cli.command()
def sweep(
    config_file: Annotated[
        str, typer.Argument(metavar="SWEEP", help="Sweep config file, YAML or JSON; - reads standard input.")
    ],
    watch_it: Annotated[bool, typer.Option("--watch", "-w", help="Follow the sweep until it ends.")] = False,
) -> None:
    """Create a sweep from a W&B-style config file and print its id and planned runs."""
    text = read_input(config_file, "SWEEP")
    console = stdout()
    with connected() as client:
        created = client.create_sweep(text)
        counts, method = created["counts"], created["method"]
        # A bayes sweep makes its runs a few at a time; run_cap is how many it will make.
        planned = created["config"].get("run_cap") if method == "bayes" else counts["total"]
        label = f" {created['name']}" if created.get("name") else ""
        console.print(
            f"sweep {created['id']}{escape(label)} ({method}): {planned} runs planned; "
            + escape(counts_text(counts))
        )
        if not watch_it:
            console.print(f"watch it: sweepyard watch {created['id']} --sweep")
            return
        code = follow(client, "sweep", created["id"], console)
    raise typer.Exit(code)


@cli.command()
def watch(
    ident: Annotated[int, typer.Argument(metavar="ID", help="The run's id (the sweep's with --sweep).")],
    is_sweep: Annotated[bool, typer.Option("--sweep", "-s", help="ID is a sweep.")] = False,
) -> None:
    """Follow a run (or a sweep) live until it ends; exit code 0 if it succeeded (sweep: no run failed)."""
    console = stdout()
    with connected() as client:
        code = follow(client, "sweep" if is_sweep else "run", ident, console)
    raise typer.Exit(code)


@cli.command("table")
def table_command(
    sweep_id: Annotated[int, typer.Argument(metavar="SWEEP", help="The sweep's id.")],
    rows: Annotated[
        str | None, typer.Option(help="Parameter down the rows; default the first swept.")
    ] = None,
    cols: Annotated[
        str | None, typer.Option(help="Parameter across the columns; default the second swept.")
    ] = None,
    metric: Annotated[
        SummaryMetric | None, typer.Option(help="Summary metric; default the sweep's own.")
    ] = None,
    output_format: Annotated[
        TableFormat, typer.Option("--format", "-f", help="table, or the server's csv or markdown as is.")
    ] = TableFormat.table,
) -> None:
    """Print a sweep's table of a metric's mean ± std (n) by two parameters."""
    metric_name = metric.value if metric is not None else None
    with connected() as client:
        if output_format is not TableFormat.table:
            text = client.sweep_table_text(
                sweep_id, format=output_format.value, rows=rows, cols=cols, metric=metric_name
            )
            typer.echo(text, nl=not text.endswith("\n"))
            return
        data = client.sweep_table(sweep_id, rows=rows, cols=cols, metric=metric_name)
    stdout().print(render_table(data))


def render_table(data: Mapping[str, Any]) -> RenderableType:
    rows, cols = data["rows"], data.get("cols")
    title = f"sweep {data['sweep_id']}: {data['metric']}, mean ± std (n)"
    if data.get("averaged_over"):
        title += f", averaged over {', '.join(data['averaged_over'])}"
    table = Table()
    table.add_column(escape(f"{rows} \\ {cols}" if cols else rows), style="bold")
    col_values = data["col_values"] if cols else [None]
    for value in col_values:
        table.add_column(escape(number(value) if cols else data["metric"]), justify="right")
    cells = {(repr(cell["row"]), repr(cell["col"])): cell for cell in data["cells"]}
    for row_value in data["row_values"]:
        texts = []
        for col_value in col_values:
            cell = cells.get((repr(row_value), repr(col_value)))
            texts.append("–" if cell is None else cell_text(cell))
        table.add_row(escape(number(row_value)), *texts)
    # The title as a line of its own: a table's title wraps to the table's width, often narrower.
    return Group(Text(title, style="bold"), table)


def cell_text(cell: Mapping[str, Any]) -> str:
    spread = "" if cell.get("std") is None else f" ± {number(cell['std'], 2)}"
    return f"{number(cell['mean'])}{spread} ({cell['n']})"


@cli.command("runs")
def runs_command(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    sweep_id: Annotated[int | None, typer.Option("--sweep", help="Only runs of this sweep.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many runs.")] = 20,
) -> None:
    """List runs, newest first."""
    with connected() as client:
        page = client.list_runs(
            status=status.value if status is not None else None, sweep_id=sweep_id, tag=tag, limit=limit
        )
    table = Table(caption=f"{len(page['data'])} of {page['count']} runs, newest first")
    for header in ("id", "name", "status", "epoch", "dataset", "depth", "width", "lr"):
        table.add_column(header, justify="right" if header in ("id", "epoch", "depth", "width") else "left")
    table.add_column("best_val_loss", justify="right")
    table.add_column("test_loss", justify="right")
    for run in page["data"]:
        spec, summary, progress = run["spec"], run.get("summary") or {}, run["progress"]
        table.add_row(
            str(run["id"]),
            escape(run.get("name") or ""),
            styled_status(run["status"]),
            f"{progress['epoch']}/{progress['epochs']}",
            escape(str(spec["dataset"])),
            str(spec["depth"]),
            str(spec["width"]),
            number(spec["lr"]),
            number(summary.get("best_val_loss")),
            number(summary.get("test_loss")),
        )
    stdout().print(table)


@cli.command()
def cancel(
    ident: Annotated[int, typer.Argument(metavar="ID", help="The run's id (the sweep's with --sweep).")],
    is_sweep: Annotated[bool, typer.Option("--sweep", "-s", help="ID is a sweep.")] = False,
) -> None:
    """Cancel a queued or running run (or a whole sweep) and print its new status."""
    with connected() as client:
        if is_sweep:
            swept = client.cancel_sweep(ident)
            stdout().print(
                f"sweep {ident} {styled_status(swept['status'])}: " + escape(counts_text(swept["counts"]))
            )
        else:
            run = client.cancel_run(ident)
            stdout().print(f"run {ident} {styled_status(run['status'])}")


@cli.command()
def plot(
    ident: Annotated[int, typer.Argument(metavar="ID", help="The run's id (the sweep's with --sweep).")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="File to write; its suffix (.png, .svg, .gif) picks the type."),
    ],
    kind: Annotated[
        PlotKind | None,
        typer.Option(
            help="Run: loss (default), predictions, boundary. Sweep: heatmap (default), importance, "
            "parallel, curves."
        ),
    ] = None,
    is_sweep: Annotated[bool, typer.Option("--sweep", "-s", help="ID is a sweep.")] = False,
    rows: Annotated[str | None, typer.Option(help="Heatmap: parameter down the rows.")] = None,
    cols: Annotated[str | None, typer.Option(help="Heatmap: parameter across the columns.")] = None,
    metric: Annotated[SummaryMetric | None, typer.Option(help="Sweep plots: the metric.")] = None,
) -> None:
    """Save a run's (or a sweep's) plot as a PNG, SVG or GIF file."""
    allowed = SWEEP_PLOTS if is_sweep else RUN_PLOTS
    chosen = kind.value if kind is not None else allowed[0]
    if chosen not in allowed:
        what = "a sweep" if is_sweep else "a run (add --sweep for a sweep's)"
        raise typer.BadParameter(
            f"{chosen} is no plot of {what}; choose {', '.join(allowed)}", param_hint="--kind"
        )
    ext = output.suffix.lower().lstrip(".")
    if ext not in PLOT_TYPES:
        raise typer.BadParameter(
            f"{output} should end in .png, .svg or .gif: the suffix picks the image type",
            param_hint="--output",
        )
    if ext == "gif" and chosen != "boundary":
        raise typer.BadParameter(
            "only --kind boundary animates to a .gif; use .png or .svg", param_hint="--output"
        )
    if (rows or cols) and chosen != "heatmap":
        raise typer.BadParameter("--rows and --cols shape a sweep's heatmap only", param_hint="--rows/--cols")
    if metric is not None and not is_sweep:
        raise typer.BadParameter("--metric is for sweep plots (with --sweep)", param_hint="--metric")
    params = {
        key: value
        for key, value in (("rows", rows), ("cols", cols), ("metric", metric.value if metric else None))
        if value is not None
    }
    with connected() as client:
        if is_sweep:
            image = client.plot(chosen, ext, sweep_id=ident, params=params)
        else:
            image = client.plot(chosen, ext, run_id=ident, params=params)
    try:
        output.write_bytes(image)
    except OSError as exc:
        stderr().print(f"[red]cannot write {escape(str(output))}:[/red] {escape(exc.strerror or str(exc))}")
        raise typer.Exit(1) from None
    stdout().print(f"wrote {escape(str(output))} ({size_text(len(image))})")


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
