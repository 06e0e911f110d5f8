"""Schemathesis with every built-in check against flaskstack's OpenAPI documents.

Two APIs are tested, each under gunicorn on loopback, on PostgreSQL and Redis,
in the ``production`` profile, with a real API token: the reference app
(``/api/openapi.json``) and the project ``flaskstack new`` generates.
Schemathesis runs as users run it (``schemathesis run --checks all``), in all
four phases: examples, coverage (boundary values, missing parameters,
methods the document does not list), fuzzing (valid and invalid data) and
stateful (sequences that follow the document's links: create, read, delete,
read again). Every built-in check applies: no 5xx; statuses, content types,
headers and bodies as the document declares; invalid data refused and valid
data accepted; 405 for undeclared methods; ``Allow`` matching the
document; authentication enforced; no use after delete.

The document is tested a little more strictly than it is served: each
operation's ``default`` response (any other error, as a problem document) is
removed first, so that ``status_code_conformance`` proves every status
flaskstack itself can answer is listed. A status the app's own code chooses
(``rest.abort(401)`` for a wrong password) is what ``default`` is for; such
cases are in :data:`REFERENCE_EXEMPTIONS`, each with its reason, next to the few places
where the document cannot say what the server does.

``$FLASKSTACK_SCHEMA_EXAMPLES`` (default 3) bounds the examples per operation
and phase; ``$FLASKSTACK_SCHEMA_SEED`` picks the seed (2 by default, so every
run sends the same requests; ``random`` for a new one; a failure names its
seed).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import pytest
import requests
from reliability import app_endpoints
from reliability.stackfixtures import FAST_HASHING
from reliability.stackrun import AppServer, flask_command, production_environment
from scaffolding import generate_project

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from redis_servers import RedisServer
    from reliability.stackfixtures import Stack
    from reliability.stackrun import PostgresCluster

EXAMPLES = int(os.environ.get("FLASKSTACK_SCHEMA_EXAMPLES") or 3)
# A fixed seed by default, so a landing is judged on the same requests every time;
# FLASKSTACK_SCHEMA_SEED=random explores new ones (a failure names its seed to replay).
_SEED_SETTING = os.environ.get("FLASKSTACK_SCHEMA_SEED") or "2"
SEED = random.randrange(2**32) if _SEED_SETTING == "random" else int(_SEED_SETTING)
PHASES = "examples,coverage,fuzzing,stateful"
PROJECT = "notekeeper"


@dataclasses.dataclass(frozen=True)
class Exemption:
    """A failure that is not flaskstack's to fix: ``check`` on ``operation`` whose
    response contains ``evidence``, and why."""

    check: str
    operation: str
    evidence: str
    reason: str

    def covers(self, failure: Failure) -> bool:
        return (
            failure.check == self.check
            and failure.operation == self.operation
            and self.evidence in failure.answer
        )


TAKEN_EMAIL = Exemption(
    "positive_data_acceptance",
    "POST /api/auth/register",
    "An account with this email already exists.",
    "flaskstack's registration refuses an address another account has (422 naming "
    "`email`): state, not schema",
)

#: Where the reference app's document cannot say what the server does.
REFERENCE_EXEMPTIONS = [
    TAKEN_EMAIL,
    Exemption(
        "status_code_conformance",
        "POST /api/users/login",
        "Wrong email or password.",
        "a wrong password is the app's own rest.abort(401) (RealWorld's login is "
        "not auth_required); the served document's `default` response covers it",
    ),
    Exemption(
        "status_code_conformance",
        "POST /api/users/login",
        "Too many failed login attempts.",
        "the app's own login throttle (flaskstack.throttle.login_throttles) answers 429 after "
        "the fuzzer's wrong passwords; the served document's `default` response covers it",
    ),
    *(
        Exemption(
            check,
            "POST /api/profiles/{username}/follow",
            "You cannot follow yourself.",
            "following oneself is refused by the app's own rest.ValidationError "
            "(422, on a request without a body; `default` covers the status); who "
            "asks is not something a schema can express",
        )
        for check in ("status_code_conformance", "positive_data_acceptance")
    ),
    *(
        Exemption(
            "positive_data_acceptance",
            operation,
            "has already been taken",
            "a taken email or username is state, not schema; RealWorld answers it 422",
        )
        for operation in ("POST /api/users", "PUT /api/user")
    ),
    *(
        Exemption(
            "allow_header_conformance",
            operation,
            "",
            "RealWorld's paths overlap: /api/articles/feed is also /api/articles/{slug} "
            "with the slug 'feed', so the Allow header truthfully lists that rule's "
            "DELETE and PUT too (schemathesis files it under the OPTIONS request or the "
            "GET operation)",
        )
        for operation in ("OPTIONS /api/articles/feed", "GET /api/articles/feed")
    ),
]

#: Where the generated project's document cannot say what the server does.
PROJECT_EXEMPTIONS: list[Exemption] = [
    TAKEN_EMAIL,
    *(
        Exemption(
            "positive_data_acceptance",
            operation,
            "is in progress in this session",
            "a passkey ceremony answers the challenge its options request put in the session "
            "(used once): whether one is waiting is state, not schema; the answer is 400 "
            "saying to start again",
        )
        for operation in ("POST /api/auth/passkeys/login", "POST /api/auth/passkeys")
    ),
]


@dataclasses.dataclass
class Failure:
    """One failed check, as the run's event stream reports it."""

    check: str
    operation: str
    title: str
    message: str
    answer: str

    def __str__(self) -> str:
        message = self.message.strip().replace("\n", " | ")[:400]
        return f"{self.check} on {self.operation}: {self.title}: {message}\n    {self.answer}"


def _answer(interaction: Mapping[str, t.Any] | None) -> str:
    """The request and response of a recorded interaction, shortened."""
    if not interaction:
        return "(no interaction recorded)"
    request, response = interaction["request"], interaction.get("response") or {}
    content = response.get("content") or {}
    body = base64.b64decode(content["$base64"]) if "$base64" in content else b""
    sent = request.get("body") or {}
    sent_body = base64.b64decode(sent["$base64"])[:300] if "$base64" in sent else b""
    return (
        f"{request['method']} {request['uri'][:200]} {sent_body!r} -> "
        f"{response.get('status_code')} {body[:300]!r}"
    )


def _document_without_default(origin: str) -> dict[str, t.Any]:
    """The served document, each operation's ``default`` response removed."""
    reply = requests.get(f"{origin}/api/openapi.json", timeout=15)
    assert reply.status_code == 200, reply.text[:300]
    document: dict[str, t.Any] = reply.json()
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].pop("default", None)
    return document


def _failures(events: Path) -> list[Failure]:
    """The failed checks in the NDJSON event stream of a run."""
    found: list[Failure] = []
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None or finished["status"] == "success":
            continue
        recorder = finished["recorder"]
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check["status"] != "failure":
                    continue
                failure = check["failure_info"]["failure"]
                found.append(
                    Failure(
                        check["name"],
                        failure["operation"],
                        failure["title"],
                        failure["message"],
                        _answer(recorder.get("interactions", {}).get(case_id)),
                    )
                )
    return found


def run_schemathesis(
    origin: str, authorization: str, directory: Path, exemptions: list[Exemption]
) -> None:
    """Run every check on every operation of ``origin``'s API; fail on what is not excepted."""
    directory.mkdir(parents=True, exist_ok=True)
    document = directory / "openapi.json"
    document.write_text(json.dumps(_document_without_default(origin)))
    script = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert script is not None, "schemathesis is not installed next to this Python"
    report, events = directory / "report.json", directory / "events.ndjson"
    command = [
        script,
        "run",
        str(document),
        "--url",
        origin,
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--header",
        f"Authorization: {authorization}",
        "--request-timeout",
        "15",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(report),
        "--report-ndjson-path",
        str(events),
        "--no-color",
    ]
    # Its working directory is where schemathesis keeps its example database.
    ran = subprocess.run(
        command,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "COLUMNS": "160"},
    )
    output = ran.stdout + ran.stderr
    assert report.is_file(), f"schemathesis wrote no report:\n{output[-3000:]}"
    summary = json.loads(report.read_text())
    assert summary["complete"], (
        f"the run stopped early ({summary['stop_reason']}):\n{output[-3000:]}"
    )
    assert summary["errors"] == [], f"schemathesis errors: {summary['errors']}\n{output[-3000:]}"
    assert summary["operations"]["tested"] == summary["operations"]["total"] > 0, summary
    unexpected = {
        (failure.check, failure.operation, failure.title): failure
        for failure in _failures(events)
        if not any(exemption.covers(failure) for exemption in exemptions)
    }
    assert not unexpected, (
        f"schemathesis found {len(unexpected)} failures (seed {SEED}; replay with "
        f"FLASKSTACK_SCHEMA_SEED={SEED}):\n"
        + "\n".join(sorted(map(str, unexpected.values())))
        + f"\n\n{output[-6000:]}"
    )


def test_the_reference_app_passes_every_check(fuzz_stack: Stack, tmp_path: Path) -> None:
    host, port = fuzz_stack.server.address
    writer = app_endpoints.Writer(fuzz_stack.browser(client_address="198.18.1.2"))
    run_schemathesis(
        f"http://{host}:{port}",
        f"Token {writer.token}",
        tmp_path / "schemathesis",
        REFERENCE_EXEMPTIONS,
    )


# -- a generated project ---------------------------------------------------------------


@dataclasses.dataclass
class GeneratedProject:
    """A project made by ``flaskstack new``, served by gunicorn, with a user's API token."""

    server: AppServer
    token: str


@pytest.fixture(scope="module")
def generated_project(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: PostgresCluster, stack_redis: RedisServer
) -> Iterator[GeneratedProject]:
    """``flaskstack new`` → ``flask db upgrade`` on PostgreSQL → gunicorn, production profile."""
    base = tmp_path_factory.mktemp("generated")
    root = base / PROJECT
    generate_project(PROJECT, root)
    database = pg_cluster.create_database(f"generated_{uuid.uuid4().hex[:10]}")
    env: Mapping[str, str] = production_environment(
        database_url=database,
        redis_url=stack_redis.url,
        namespace=f"generated-{uuid.uuid4().hex[:10]}",
        extra={
            "PYTHONPATH": str(root),
            **FAST_HASHING,
            # The project has passkeys on: production needs its relying party (.env.example).
            "FLASKSTACK_PASSKEYS_RP_ID": "localhost",
            "FLASKSTACK_PASSKEYS_ORIGINS": "http://localhost:8000",
        },
    )
    factory = f"{PROJECT}:create_app"
    flask_command(factory, env, "db", "upgrade", "--directory", str(root / "migrations"))
    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.test"
    flask_command(factory, env, "stack", "create-user", email, "--password-stdin", input="p" * 16)
    created_token = flask_command(factory, env, "stack", "token", "create", email, "--name", "fuzz")
    token = created_token.stdout.strip().splitlines()[-1]
    server = AppServer(base / "servers", f"{factory}()", env, name="generated")
    server.start()
    try:
        yield GeneratedProject(server, token)
    finally:
        server.stop()


def test_a_generated_project_passes_every_check(
    generated_project: GeneratedProject, tmp_path: Path
) -> None:
    host, port = generated_project.server.address
    run_schemathesis(
        f"http://{host}:{port}",
        f"Bearer {generated_project.token}",
        tmp_path / "schemathesis",
        PROJECT_EXEMPTIONS,
    )
