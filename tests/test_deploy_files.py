"""The Dockerfile and docker-compose.yml only run what the project really has (no Docker needed).

Compose and the Dockerfile are checked as text and YAML: every command they start, every target they build,
every module they name and every SWEEPYARD_* variable they set must exist on this side.
"""

import ast
import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

import app.cli
from app.core import migrate
from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
EXPECTED_COMMANDS = {"up", "api", "worker", "migrate"}
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))


# --- reading the files ---------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    env: dict[str, str] = field(default_factory=dict)
    run: list[str] = field(default_factory=list)
    cmd: list[str] | None = None
    user: str | None = None
    healthchecks: list[str] = field(default_factory=list)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: comments dropped, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return instructions


def parse_env(arguments: str) -> dict[str, str]:
    tokens = shlex.split(arguments)
    if tokens and "=" not in tokens[0]:  # the legacy `ENV KEY value` form
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def dockerfile_stages() -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert match, f"cannot read FROM {rest}"
            name = match.group(2) or f"stage{len(stages)}"
            stage = stages[name] = Stage(name=name, base=match.group(1))
        elif stage is None:
            assert keyword == "ARG", f"{keyword} before the first FROM"
        elif keyword == "ENV":
            stage.env.update(parse_env(rest))
        elif keyword == "RUN":
            stage.run.append(rest)
        elif keyword == "CMD":
            stage.cmd = yaml.safe_load(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "HEALTHCHECK":
            stage.healthchecks.append(rest)
    return stages


def stage_chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, the first stage first."""
    chain = [stages[name]]
    while chain[0].base in stages:
        chain.insert(0, stages[chain[0].base])
    return chain


def effective(stages: dict[str, Stage], name: str) -> Stage:
    """What a final target ends up with: ENV, RUN and HEALTHCHECK add up; CMD and USER are the last set."""
    result = Stage(name=name, base=stage_chain(stages, name)[0].base)
    for stage in stage_chain(stages, name):
        result.env.update(stage.env)
        result.run += stage.run
        result.healthchecks += stage.healthchecks
        result.cmd = stage.cmd or result.cmd
        result.user = stage.user or result.user
    return result


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def argv(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR-default} / ${VAR} with an empty environment; $$ is a literal $."""
    value = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)
    value = re.sub(r"\$\{\w+\}", "", value)
    return value.replace("$$", "$")


def sweepyard_commands() -> list[tuple[str, list[str]]]:
    commands = [(name, argv(service.get("command"))) for name, service in services().items()]
    return [(name, args) for name, args in commands if args and args[0] == "sweepyard"]


def cli_command_names() -> set[str]:
    return {
        info.name or typer.main.get_command_name(info.callback.__name__)
        for info in app.cli.cli.registered_commands
        if info.callback is not None
    }


def healthcheck_texts() -> list[str]:
    texts = [" ".join(argv(svc.get("healthcheck", {}).get("test"))) for svc in services().values()]
    for stage in dockerfile_stages().values():
        texts += stage.healthchecks
    return [text for text in texts if text]


# --- the CLI itself ------------------------------------------------------------------------------------


def test_cli_registers_the_documented_commands() -> None:
    assert cli_command_names() >= EXPECTED_COMMANDS


def test_sweepyard_help_lists_the_commands() -> None:
    script = Path(sys.executable).parent / "sweepyard"
    assert script.exists(), f"{script} missing: is the project installed (`pip install -e .`)?"
    result = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert result.returncode == 0, result.stderr
    for name in EXPECTED_COMMANDS:
        # A command row: box drawing or spaces, the name, then the gap before its help text.
        assert re.search(rf"^\W*{name}\s{{2,}}\S", result.stdout, re.MULTILINE), (name, result.stdout)


def test_console_script_is_declared_and_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = pyproject["project"]["scripts"]["sweepyard"]
    assert target == "app.cli:main"
    module_name, _, attribute = target.partition(":")
    entry = getattr(importlib.import_module(module_name), attribute)
    assert callable(entry)
    monkeypatch.setattr(sys, "argv", ["sweepyard", "--help"])
    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == 0


# --- docker-compose.yml --------------------------------------------------------------------------------


def test_compose_follows_the_compose_specification() -> None:
    document = compose()
    assert "version" not in document, "the Compose specification dropped the top-level version key"
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(document["services"])
    for name, service in document["services"].items():
        assert "image" in service or "build" in service, name


def test_compose_commands_are_real_cli_commands() -> None:
    commands = sweepyard_commands()
    assert {name for name, _ in commands} >= {"migrate", "api", "worker"}
    known = cli_command_names()
    runner = CliRunner()
    for service, args in commands:
        assert len(args) > 1 and args[1] in known, f"{service}: `{' '.join(args)}` is no sweepyard command"
        # The subcommand must also accept the arguments compose gives it.
        result = runner.invoke(app.cli.cli, [*args[1:], "--help"])
        assert result.exit_code == 0, f"{service}: {result.output}"


def test_compose_migrates_before_api_and_worker_start() -> None:
    all_services = services()
    assert argv(all_services["migrate"]["command"]) == ["sweepyard", "migrate"]
    assert all_services["migrate"].get("restart") == "no"
    assert all_services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = all_services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_compose_build_targets_exist_in_the_dockerfile() -> None:
    stages = dockerfile_stages()
    targets = {
        name: service["build"]["target"]
        for name, service in services().items()
        if isinstance(service.get("build"), dict) and "target" in service["build"]
    }
    assert targets == {"migrate": "api", "api": "api", "worker": "worker"}
    for service, target in targets.items():
        assert target in stages, f"{service} builds target {target!r}, which the Dockerfile lacks"


def test_compose_sweepyard_environment_matches_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    seen: dict[str, str] = {}
    for service_name in ("migrate", "api", "worker"):
        env = environment(services()[service_name])
        assert {"SWEEPYARD_DATABASE_URL", "SWEEPYARD_BROKER_URL", "SWEEPYARD_WORKERS"} <= set(env)
        seen.update(env)
    variables = {key: interpolate(value) for key, value in seen.items() if key.startswith("SWEEPYARD_")}
    unknown = set(variables) - fields
    assert not unknown, f"compose sets variables Settings never reads: {sorted(unknown)}"
    # And Settings accepts the values compose gives (with every ${VAR:-default} at its default).
    for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.broker_url.startswith("redis://")
    assert not settings.uses_embedded_broker


def test_dockerfile_sweepyard_environment_matches_settings() -> None:
    fields = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    names = {
        key for stage in dockerfile_stages().values() for key in stage.env if key.startswith("SWEEPYARD_")
    }
    assert names, "the Dockerfile sets no SWEEPYARD_* variable"
    assert names <= fields, f"the Dockerfile sets variables Settings never reads: {sorted(names - fields)}"


def test_api_listens_on_all_interfaces_on_the_published_port() -> None:
    api_service = services()["api"]
    image_env = effective(dockerfile_stages(), api_service["build"]["target"]).env
    env = {**image_env, **{key: interpolate(value) for key, value in environment(api_service).items()}}
    assert env.get("SWEEPYARD_HOST") == "0.0.0.0", "in a container the API must not bind to loopback only"
    port = int(env.get("SWEEPYARD_PORT", Settings.model_fields["port"].default))
    container_ports = {int(str(mapping).rsplit(":", 1)[-1].split("/")[0]) for mapping in api_service["ports"]}
    assert port in container_ports
    health = " ".join(argv(api_service["healthcheck"]["test"]))
    assert f"127.0.0.1:{port}/healthz" in health


def test_workers_scale() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker, "a fixed container name stops `--scale worker=N`"
    assert "ports" not in worker, "host ports clash as soon as there are two workers"


def test_named_modules_exist() -> None:
    texts = healthcheck_texts() + [" ".join(args) for _, args in sweepyard_commands()]
    modules = {match for text in texts for match in re.findall(r"(?:-A|--app)[ =]([\w.]+)", text)}
    assert "worker.celery_app" in modules, "the worker healthcheck no longer names the Celery app"
    for module in modules:
        assert importlib.util.find_spec(module) is not None, f"{module} is named but does not exist"


# --- the Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_final_targets() -> None:
    stages = dockerfile_stages()
    assert stage_chain(stages, "api")[0].base in {"python:3.11-slim", "${PYTHON_IMAGE}"}
    expected_cmd = {"api": ["sweepyard", "api"], "worker": ["sweepyard", "worker"]}
    expected_cmd["worker-cuda"] = expected_cmd["worker"]
    for target, cmd in expected_cmd.items():
        image = effective(stages, target)
        assert image.cmd == cmd, target
        assert image.cmd[1] in cli_command_names()
        assert image.user not in {None, "root", "0"}, f"{target} runs as root"
    assert any("-e ." in run for run in stages["api"].run)
    for target in ("worker", "worker-cuda"):
        assert any("-e '.[worker]'" in run for run in stages[target].run), target


def test_dockerfile_default_python_image_is_slim_3_11() -> None:
    args = [rest for keyword, rest in dockerfile_instructions() if keyword == "ARG"]
    defaults = dict(arg.split("=", 1) for arg in args if "=" in arg)
    assert defaults.get("PYTHON_IMAGE", "").strip("\"'") == "python:3.11-slim"


def test_api_image_installs_no_torch() -> None:
    image = effective(dockerfile_stages(), "api")
    installs = " ".join(image.run)
    assert "torch" not in installs.lower() and "[worker]" not in installs
    assert image.healthchecks and all("urllib" in check for check in image.healthchecks)


def test_api_code_imports_nothing_only_the_worker_image_has() -> None:
    """The api image has the base dependencies only: app/ and migrations/ must not import the worker extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}

    worker_only = (names(project["optional-dependencies"]["worker"]) - names(project["dependencies"])) | {
        "worker"
    }
    assert "torch" in worker_only
    offenders = []
    for path in [*(ROOT / "app").rglob("*.py"), *(ROOT / "migrations").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in modules if m.split(".")[0] in worker_only]
    assert not offenders, offenders


def test_migrations_are_where_migrate_looks() -> None:
    assert (ROOT / "alembic.ini").is_file()
    assert (ROOT / "migrations" / "env.py").is_file()
    # Installed editable in /app, the package finds alembic.ini and migrations/ beside its source.
    assert migrate.PROJECT_ROOT == ROOT
    script_location = Path(migrate.alembic_config().get_main_option("script_location") or "")
    assert (script_location / "env.py").is_file()


def test_dockerignore_keeps_local_state_out_but_not_the_project() -> None:
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    assert {".venv", "var", ".git"} <= patterns
    for needed in ("app", "worker", "migrations", "alembic.ini", "pyproject.toml"):
        assert needed not in patterns, needed
