"""The `sweepyard` command: `up` runs the whole service; `api`, `worker` and `migrate` run its parts."""

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Annotated

import typer

from app.core import migrate as migrations
from app.core.config import get_settings

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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
