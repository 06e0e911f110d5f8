"""Schemathesis against the running API: our own OpenAPI document and RealWorld's.

Every operation of each document gets generated requests, valid and invalid
(``positive`` and ``negative`` data), with a real API token where the
operation needs one. The rules: never a 5xx; under the API prefix every error
is an ``application/problem+json`` document; and a refused request writes
nothing. ``$FLASKSTACK_SCHEMA_EXAMPLES`` (default 3) bounds the examples per
operation and mode; Hypothesis adds the boundary cases it always tries.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from reliability import app_endpoints
from reliability.figures import FIGURES
from reliability.stackrun import REPOSITORY

if t.TYPE_CHECKING:
    from reliability.stackfixtures import Stack
    from schemathesis.schemas import BaseSchema

EXAMPLES = int(os.environ.get("FLASKSTACK_SCHEMA_EXAMPLES") or 3)
REALWORLD = Path(
    os.environ.get("FLASKSTACK_REALWORLD_OPENAPI")
    or REPOSITORY / "tests" / "realworld" / "spec" / "openapi.yml"
)
PROBLEM = "application/problem+json"


def _load(stack: Stack, which: str) -> tuple[BaseSchema, str]:
    host, port = stack.server.address
    origin = f"http://{host}:{port}"
    if which == "flaskstack":
        # Our document's paths carry the API prefix; RealWorld's are relative to it.
        return schemathesis.openapi.from_url(f"{origin}/api/openapi.json"), origin
    if not REALWORLD.is_file():
        raise AssertionError(
            f"RealWorld's OpenAPI document is not at {REALWORLD}; "
            "set FLASKSTACK_REALWORLD_OPENAPI to its path"
        )
    return schemathesis.openapi.from_path(str(REALWORLD)), f"{origin}/api"


def _needs_token(operation: t.Any) -> bool:
    definition = operation.definition.raw
    security = definition.get("security", operation.schema.raw_schema.get("security"))
    return bool(security)


def _fuzz_operation(
    stack: Stack,
    operation: t.Any,
    base: str,
    headers: dict[str, str],
    session: requests.Session,
    problems: list[str],
) -> None:
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: t.Any) -> None:
        before = app_endpoints.row_count(stack.database_url)
        try:
            response = case.call(base_url=base, session=session, headers=headers, timeout=15)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
            reject()  # a request no HTTP client would send (e.g. a newline in a header)
        FIGURES.add("schema_requests")
        status = response.status_code
        where = f"{operation.method.upper()} {operation.path} -> {status}"
        if status >= 500:
            problems.append(f"{where}: {response.text[:200]!r}")
        elif status >= 400:
            FIGURES.add("schema_requests_refused_4xx")
            # Schemathesis keeps headers with lower-case names and list values.
            media = (response.headers.get("content-type") or [""])[0].split(";")[0]
            if status == 414 and not response.headers.get("x-request-id"):
                # A request line over gunicorn's limit (a long generated query string):
                # gunicorn answers it itself, and the app never sees it.
                return
            if media != PROBLEM:
                problems.append(f"{where}: an error as {media!r}, not {PROBLEM}")
            if app_endpoints.row_count(stack.database_url) != before:
                problems.append(f"{where}: a refused request wrote to the database")

    run()


@pytest.mark.parametrize("which", ["flaskstack", "realworld"])
def test_every_operation_answers_generated_requests_cleanly(fuzz_stack: Stack, which: str) -> None:
    schema, base = _load(fuzz_stack, which)
    writer = app_endpoints.Writer(fuzz_stack.browser(client_address="198.18.1.1"))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"the {which} document has no operations"
    problems: list[str] = []
    with requests.Session() as session:
        for operation in operations:
            token = {"Authorization": f"Token {writer.token}"}
            headers = token if _needs_token(operation) else {}
            _fuzz_operation(fuzz_stack, operation, base, headers, session, problems)
    assert problems == [], "\n".join(sorted(set(problems))[:40])
