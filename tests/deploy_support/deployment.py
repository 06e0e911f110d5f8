"""A project's Dockerfile, docker-compose.yml and .env.example, read together.

:class:`Deployment` derives what the containers would run from the files
themselves (the migrate service's command, the web service's command, which
is the image's ``CMD``, and the environment each gets), so a test that runs
those commands cannot drift from the files. The ``check_*`` functions assert
the properties both this repository's files and a generated project's must
have; each fails with a message naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing as t
from pathlib import Path

import pytest

from .files import (
    Stage,
    UnsetVariable,
    interpolate,
    load_compose,
    parse_dockerfile,
    read_env_file,
    referenced_variables,
)

__all__ = [
    "APP_SERVICES",
    "FROM_ENV",
    "SECRETS",
    "WORKER_SERVICE",
    "Deployment",
    "compose_duration",
]

APP_SERVICES = ("migrate", "web", "worker")
"""The services that run the app's image."""

WORKER_SERVICE = "worker"
"""The service that runs the app's background jobs (``flask stack worker``)."""

SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD")
"""Variables that must come from .env and never have a value in a committed file."""

FROM_ENV = ("MAIL_URL",)
"""Settings compose requires from .env and never writes down (a mail URL may hold a
password), which .env.example gives a value for trying the stack: the mail service's."""

MAIL_SERVICE = "mail"
"""The service that catches the app's mail when the stack is tried out."""
MAIL_PROFILE = "mail"
"""The compose profile that starts it (``COMPOSE_PROFILES=mail`` in .env.example)."""

# Image variables that describe the image's own file system, not the app.
_IMAGE_ONLY = frozenset({"PATH"})
_BUILD_TOOLS = re.compile(
    r"\b(apt-get|apt|apk|yum|dnf)\s+(install|add)\b|\b(gcc|g\+\+|make|build-essential|"
    r"build-base|libpq-dev|python3-dev)\b"
)


@dataclasses.dataclass
class Deployment:
    """The deployment files of the project at ``root``."""

    root: Path
    compose: dict[str, t.Any]
    stages: list[Stage]
    env_example: dict[str, str]

    @classmethod
    def read(cls, root: Path) -> Deployment:
        return cls(
            root=root,
            compose=load_compose(root / "docker-compose.yml"),
            stages=parse_dockerfile(root / "Dockerfile"),
            env_example=read_env_file(root / ".env.example"),
        )

    @property
    def final_stage(self) -> Stage:
        return self.stages[-1]

    def service(self, name: str) -> dict[str, t.Any]:
        services = self.compose.get("services", {})
        assert name in services, f"docker-compose.yml has no {name!r} service"
        return t.cast("dict[str, t.Any]", services[name])

    def migrate_command(self) -> list[str]:
        """What the migrate service runs."""
        command = self.service("migrate")["command"]
        assert isinstance(command, list), "give the migrate service's command in exec form"
        return command

    def web_command(self) -> list[str]:
        """What the web service runs: its own command, else the image's CMD."""
        command = self.service("web").get("command")
        if command is not None:
            assert isinstance(command, list), "give the web service's command in exec form"
            return t.cast("list[str]", command)
        cmd = self.final_stage.last("CMD")
        assert cmd is not None, "the Dockerfile's last stage has no CMD"
        return cmd.exec_form()

    def worker_command(self) -> list[str]:
        """What the worker service runs."""
        command = self.service(WORKER_SERVICE)["command"]
        assert isinstance(command, list), "give the worker service's command in exec form"
        return t.cast("list[str]", command)

    def web_healthcheck(self) -> list[str]:
        """The web service's health check, as the command the container runs."""
        test = self.service("web")["healthcheck"]["test"]
        assert isinstance(test, list), "give the web health check in exec form"
        assert test[0] == "CMD", f"the web health check is {test[0]}, not CMD (exec form)"
        return t.cast("list[str]", test[1:])

    def variables(self, **values: str) -> dict[str, str]:
        """.env as a user fills it in from .env.example: its values, plus ``values``."""
        return {**self.env_example, **values}

    def environment(self, service: str, variables: t.Mapping[str, str]) -> dict[str, str]:
        """The app's environment in ``service``: the image's ENV, .env, then the service's.

        ``variables`` is .env: it fills in the compose file's ``${...}``
        references and, when the service reads .env (``env_file``), every
        variable in it reaches the app, under the service's ``environment``.
        """
        values = {k: v for k, v in self.final_stage.env().items() if k not in _IMAGE_ONLY}
        if ".env" in self.env_files(service):
            values.update(variables)
        declared = self.service(service).get("environment", {})
        if isinstance(declared, list):
            declared = dict(item.split("=", 1) for item in declared)
        for key, value in declared.items():
            values[key] = interpolate(str(value), variables)
        return values

    def env_files(self, service: str) -> list[str]:
        """The paths of the ``env_file`` entries of ``service``."""
        entries = self.service(service).get("env_file") or []
        if isinstance(entries, (str, dict)):
            entries = [entries]
        return [e["path"] if isinstance(e, dict) else e for e in entries]

    def bind_port(self) -> int:
        """The port the web command listens on."""
        command = self.web_command()
        for index, word in enumerate(command):
            if word in ("--bind", "-b"):
                return int(command[index + 1].rpartition(":")[2])
            if word.startswith("--bind="):
                return int(word.rpartition(":")[2])
        raise AssertionError(f"the web command {command} has no --bind")


# -- properties ---------------------------------------------------------------------------


def _volume_source(entry: t.Any) -> str:
    if isinstance(entry, dict):
        return str(entry["source"])
    return str(entry).split(":", 1)[0]


def _official(image: str, name: str) -> bool:
    repository, _, tag = image.partition(":")
    return repository in (name, f"library/{name}", f"docker.io/library/{name}") and bool(tag)


def check_data_services(deployment: Deployment) -> None:
    """PostgreSQL and Redis: official images with a tag, health checks, named volumes."""
    top_level = deployment.compose.get("volumes") or {}
    for service, image in (("db", "postgres"), ("redis", "redis")):
        spec = deployment.service(service)
        assert _official(spec["image"], image), f"{service}: {spec['image']!r} is not {image}:<tag>"
        test = spec.get("healthcheck", {}).get("test")
        assert test, f"{service} has no health check"
        volumes = spec.get("volumes") or []
        assert volumes, f"{service} keeps its data in no volume"
        for entry in volumes:
            source = _volume_source(entry)
            assert source in top_level, f"{service}: volume {source!r} is not a named volume"


def check_migration_gate(deployment: Deployment) -> None:
    """A one-shot ``flask db upgrade`` that the web service waits for."""
    assert deployment.migrate_command() == ["flask", "db", "upgrade"]
    migrate = deployment.service("migrate")
    assert migrate.get("restart") == "no", "the migrate service must run once"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    web = deployment.service("web")["depends_on"]
    assert web["migrate"]["condition"] == "service_completed_successfully"
    assert web["db"]["condition"] == "service_healthy"
    assert web["redis"]["condition"] == "service_healthy"


def check_web_service(deployment: Deployment) -> None:
    """gunicorn, healthy on /readyz, and scalable: no fixed name, no single fixed host port."""
    web = deployment.service("web")
    assert deployment.web_command()[0] == "gunicorn"
    probe = " ".join(deployment.web_healthcheck())
    assert f"127.0.0.1:{deployment.bind_port()}/readyz" in probe, probe
    assert "container_name" not in web, "a fixed container name prevents --scale web=N"
    for port in web.get("ports", []):
        published = str(port).rsplit(":", 1)[0]
        host_port = published.rsplit(":", 1)[-1]
        assert "-" in host_port, f"{port!r}: one fixed host port prevents --scale web=N"
        assert published.startswith("127.0.0.1:"), f"{port!r} publishes on every interface"


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?(?:(\d+)us)?")


def compose_duration(value: str) -> float:
    """Seconds in a Compose duration (``30s``, ``1m30s``, ``1h``, ``500ms``)."""
    match = _DURATION.fullmatch(value.strip())
    assert match is not None, f"{value!r} is not a Compose duration"
    assert any(match.groups()), f"{value!r} is not a Compose duration"
    hours, minutes, seconds, millis, micros = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1e3 + micros / 1e6


def check_worker_service(deployment: Deployment) -> None:
    """A worker that runs the jobs web enqueues, with web's settings, and a long enough grace.

    Jobs are on (``FLASKSTACK_JOBS``) in both services with the same
    environment; the worker waits for what web waits for; and Docker's
    ``stop_grace_period`` outlasts ``FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT``
    (also the value .env.example suggests), so a stopping worker requeues
    the job in flight before Docker kills it.
    """
    from flaskstack import config
    from flaskstack._parsers import parse_bool, parse_positive_float

    worker = deployment.service(WORKER_SERVICE)
    command = deployment.worker_command()
    assert command == ["flask", "stack", "worker"], f"the worker service runs {command}"
    variables = deployment.variables(SECRET_KEY="k" * 48, POSTGRES_PASSWORD="pw")
    environment = deployment.environment(WORKER_SERVICE, variables)
    web_environment = deployment.environment("web", variables)
    assert environment == web_environment, "web and worker must get the same environment"
    assert deployment.env_files(WORKER_SERVICE) == deployment.env_files("web")
    assert parse_bool(environment.get("FLASKSTACK_JOBS", "false")), "jobs are off in worker"
    assert worker.get("depends_on") == deployment.service("web").get("depends_on"), (
        "the worker must wait for what web waits for (a successful migration, db, redis)"
    )
    for key in ("ports", "container_name"):
        assert key not in worker, f"{WORKER_SERVICE} has {key}: it serves no port and scales"
    assert worker.get("restart") == "unless-stopped", worker.get("restart")
    default = next(s.default for s in config.SETTINGS if s.key == _SHUTDOWN_TIMEOUT)
    timeout = parse_positive_float(environment.get(_SHUTDOWN_TIMEOUT, default))
    text = (deployment.root / ".env.example").read_text(encoding="utf-8")
    suggested = re.findall(rf"^#? ?{_SHUTDOWN_TIMEOUT}=(\S+)$", text, re.MULTILINE)
    grace = compose_duration(str(worker.get("stop_grace_period", "10s")))
    for value in (timeout, *(parse_positive_float(v) for v in suggested)):
        assert grace > value, (
            f"{WORKER_SERVICE}: stop_grace_period ({grace:g} s) must be longer than "
            f"{_SHUTDOWN_TIMEOUT} ({value:g} s), or Docker kills a job before it is requeued"
        )


_SHUTDOWN_TIMEOUT = "FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT"


def check_configuration(deployment: Deployment) -> None:
    """Production profile, settings only from the environment and .env, no secret written down."""
    variables = deployment.variables(SECRET_KEY="k" * 48, POSTGRES_PASSWORD="pw")
    for service in APP_SERVICES:
        spec = deployment.service(service)
        env_files = deployment.env_files(service)
        assert env_files == [".env"], f"{service}: env_file is {env_files!r}, expected .env"
        environment = deployment.environment(service, variables)
        assert environment["FLASKSTACK_PROFILE"] == "production"
        for key in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
            assert environment.get(key), f"{service} gets no {key}"
        assert "build" in spec or "image" in spec
    references = referenced_variables(deployment.compose)
    for name in SECRETS:
        assert references.get(name) == ":?", f"{name} must be required (${{{name}:?...}})"
        without = {k: v for k, v in variables.items() if k != name}
        for service in APP_SERVICES:
            with pytest.raises(UnsetVariable, match=name):
                deployment.environment(service, without)
    for name in FROM_ENV:
        assert references.get(name) == ":?", f"{name} must be required (${{{name}:?...}})"
        without = {k: v for k, v in variables.items() if k != name}
        for service in APP_SERVICES:
            declared = deployment.service(service).get("environment") or {}
            value = str(declared.get(name, "")) if isinstance(declared, dict) else ""
            # Nothing around the reference either: no host or user written down.
            assert re.fullmatch(rf"\$\{{{name}:\?[^}}]*\}}", value), (
                f"{service}: {name} must come from .env alone (${{{name}:?...}}), not {value!r}"
            )
            with pytest.raises(UnsetVariable, match=name):
                deployment.environment(service, without)
    text = (deployment.root / "docker-compose.yml").read_text(encoding="utf-8")
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and re.search(r"SECRET|PASSWORD|TOKEN", key) and value.strip():
            assert value.strip().startswith("${"), f"a literal secret in docker-compose.yml: {line}"


def check_env_example(deployment: Deployment) -> None:
    """.env.example names every variable the compose file uses and holds no secret."""
    text = (deployment.root / ".env.example").read_text(encoding="utf-8")
    for name in referenced_variables(deployment.compose):
        assert re.search(rf"^#? ?{name}=", text, re.MULTILINE), f".env.example lacks {name}"
    for name in SECRETS:
        assert deployment.env_example.get(name) == "", f".env.example must leave {name} empty"
    for name in FROM_ENV:
        assert deployment.env_example.get(name), f".env.example gives {name} no value to try"
    for service in APP_SERVICES:
        try:
            deployment.environment(service, deployment.env_example)
        except UnsetVariable:
            continue
        raise AssertionError(f"{service} starts with .env.example's empty secrets")


def check_mail_service(deployment: Deployment) -> None:
    """Mailpit catches the mail of a tried-out stack; production needs none of it.

    .env.example sends the app's mail to the mail service, which compose starts
    only under its profile (``COMPOSE_PROFILES`` in .env.example) and no app
    service waits for: sending is optional at run time (a message that cannot
    be sent is logged), and a production .env names the provider instead. Its
    web UI is published on 127.0.0.1 only; its SMTP port on no host port.
    .env.example also names the hosts the site answers to (``auth.W010``).
    """
    mail = deployment.service(MAIL_SERVICE)
    repository, _, tag = str(mail["image"]).partition(":")
    assert repository == "axllent/mailpit", f"{MAIL_SERVICE}: {mail['image']!r} is not Mailpit"
    assert tag not in ("", "latest"), f"{MAIL_SERVICE}: pin a Mailpit version, not {tag!r}"
    assert mail.get("profiles") == [MAIL_PROFILE], f"{MAIL_SERVICE} must run only when asked"
    ports = [str(port) for port in mail.get("ports", [])]
    assert ports == ["127.0.0.1:8025:8025"], f"{MAIL_SERVICE} publishes {ports}"
    for service in APP_SERVICES:
        waits_for = deployment.service(service).get("depends_on") or {}
        assert MAIL_SERVICE not in waits_for, f"{service} must not wait for {MAIL_SERVICE}"
    example = deployment.env_example
    assert example.get("MAIL_URL") == f"smtp://{MAIL_SERVICE}:1025", example.get("MAIL_URL")
    assert example.get("FLASKSTACK_MAIL_FROM"), ".env.example gives the mail no sender"
    assert MAIL_PROFILE in example.get("COMPOSE_PROFILES", "").split(","), (
        f".env.example must start the {MAIL_SERVICE} service (COMPOSE_PROFILES={MAIL_PROFILE})"
    )
    hosts = json.loads(example.get("FLASK_TRUSTED_HOSTS", "null"))
    assert isinstance(hosts, list), "FLASK_TRUSTED_HOSTS in .env.example is not a JSON list"
    assert {"localhost", "127.0.0.1"} <= set(hosts), f"FLASK_TRUSTED_HOSTS is {hosts}"


def check_dockerfile(deployment: Deployment) -> None:
    """Multi-stage, a final stage without build tools, running as a user that is not root."""
    stages = deployment.stages
    assert len(stages) >= 2, "the Dockerfile has one stage"
    names = {stage.name for stage in stages[:-1]}
    final = deployment.final_stage
    assert final.base not in names, "the final stage must start from a clean base image"
    for run in final.all("RUN"):
        assert not _BUILD_TOOLS.search(run.arguments), f"the final stage installs tools: {run}"
    copied_from = {c.flags().get("from") for c in final.all("COPY")} - {None}
    assert copied_from, "the final stage copies nothing from a build stage"
    assert copied_from <= names, f"the final stage copies from {copied_from}"
    user = final.last("USER")
    assert user is not None, "the final stage runs as root"
    assert user.words()[0].split(":")[0] not in ("root", "0"), f"USER {user.arguments}"
    keywords = [i.keyword for i in final.instructions]
    last_cmd = len(keywords) - 1 - keywords[::-1].index("CMD")
    assert keywords.index("USER") < last_cmd, "USER must come before CMD"
    assert final.env().get("FLASKSTACK_PROFILE") == "production"


def check_dockerignore(deployment: Deployment) -> None:
    """The build context leaves out secrets, history and local environments."""
    patterns = {
        line.strip()
        for line in (deployment.root / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for pattern in (".env", ".git", ".venv*", "instance"):
        assert pattern in patterns, f".dockerignore does not exclude {pattern}"


ALL_CHECKS = (
    check_data_services,
    check_migration_gate,
    check_web_service,
    check_worker_service,
    check_configuration,
    check_env_example,
    check_mail_service,
    check_dockerfile,
    check_dockerignore,
)
"""Every property check, for projects that are checked as a whole."""
