"""API tokens: made with the CLI, refused when guessed, malformed, revoked or expired."""

from __future__ import annotations

import hashlib
import re
import secrets
import typing as t

import psycopg
import pytest
from psycopg import sql
from reliability import app_endpoints
from reliability.figures import FIGURES

if t.TYPE_CHECKING:
    from reliability.browser import Reply
    from reliability.stackfixtures import Stack

GUESSES = 200
MALFORMED: tuple[str | bytes, ...] = (
    "Bearer",
    "Bearer ",
    "Bearer  ",
    "bearer fst_",
    "Bearer fst_" + "A" * 5000,
    "Bearer fst_\u00e9\u00e9\u00e9",
    b"Bearer fst_\xff\xfe\xfd",
    "Bearer fst_' OR '1'='1",
    "Bearer fst_%00",
    "Bearer fst_; DROP TABLE api_tokens; --",
    "Bearer null",
    "Bearer undefined",
    "Bearer [object Object]",
    "Token fst_abc",
    "Basic Zm9vOmJhcg==",
    "Digest username=x",
    "Bearer fst_abc fst_def",
    "Bearer\tfst_abc",
    "fst_abc",
    ", Bearer fst_abc",
)


def _stored_token(stack: Stack, email: str, expired: bool = False) -> str:
    """A token written straight to the database as flaskstack stores one (its SHA-256).

    Quicker than the CLI, which gets its own tests here.
    """
    token = "fst_" + secrets.token_urlsafe(32)
    query = sql.SQL(
        "INSERT INTO {tokens} (user_id, name, token_hash, prefix, expires_at) "
        "SELECT id, 'direct', %s, %s, CASE WHEN %s THEN now() - interval '1 second' END "
        "FROM {users} WHERE email = %s"
    ).format(
        tokens=sql.Identifier(app_endpoints.TOKEN_TABLE),
        users=sql.Identifier(app_endpoints.USER_TABLE),
    )
    with psycopg.connect(stack.database_url, connect_timeout=5) as conn:
        conn.execute(
            query, (hashlib.sha256(token.encode()).hexdigest(), token[:10], expired, email)
        )
    return token


def _token(stack: Stack, email: str, *options: str) -> tuple[int, str]:
    out = stack.flask("stack", "token", "create", email, "--name", "probe", *options)
    match = re.search(r"Created token (\d+)", out)
    assert match, out
    return int(match.group(1)), out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def user(shared_stack: Stack) -> str:
    email = app_endpoints.write_key()
    shared_stack.flask("stack", "create-user", email, "--password-stdin", input="p" * 20 + "\n")
    return email


def _whoami(stack: Stack, authorization: str | bytes) -> Reply:
    return stack.browser().get(
        "/_probe/whoami", headers=[("Authorization", authorization), ("Accept", "*/*")]
    )


def _assert_refused(reply: Reply) -> None:
    assert reply.status == 401, (reply.status, reply.text[:300])
    assert reply.content_type == "application/problem+json"
    assert reply.header("WWW-Authenticate") is not None
    assert reply.cookies() == {}
    FIGURES.add("tokens_refused")


def test_a_cli_token_authenticates_until_the_cli_revokes_it(shared_stack: Stack, user: str) -> None:
    token_id, token = _token(shared_stack, user)
    assert token.startswith("fst_")
    reply = _whoami(shared_stack, f"Bearer {token}")
    assert reply.status == 200
    assert reply.json() == {"user": user}
    assert reply.cookies() == {}  # token requests never get a session
    assert _whoami(shared_stack, f"Token {token}").status == 200  # Conduit's scheme
    shared_stack.flask("stack", "token", "revoke", str(token_id))
    _assert_refused(_whoami(shared_stack, f"Bearer {token}"))


def test_guessed_tokens_are_refused(shared_stack: Stack) -> None:
    for _ in range(GUESSES):
        _assert_refused(_whoami(shared_stack, f"Bearer fst_{secrets.token_urlsafe(32)}"))


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_authorization_is_refused_cleanly(
    shared_stack: Stack, header: str | bytes
) -> None:
    reply = _whoami(shared_stack, header)
    # Schemes that are not API tokens fall through to the browser rules (401 or a redirect).
    assert reply.status in (302, 400, 401), (reply.status, reply.text[:300])
    FIGURES.add("tokens_refused")


def test_an_expired_token_is_refused(shared_stack: Stack, user: str) -> None:
    assert _whoami(shared_stack, f"Bearer {_stored_token(shared_stack, user)}").status == 200
    _assert_refused(_whoami(shared_stack, f"Bearer {_stored_token(shared_stack, user, True)}"))


def test_a_token_of_a_disabled_user_is_refused(shared_stack: Stack) -> None:
    email = app_endpoints.write_key()
    assert app_endpoints.register(shared_stack.browser(), email).status == 302
    token = _stored_token(shared_stack, email)
    assert _whoami(shared_stack, f"Bearer {token}").status == 200
    disable = sql.SQL("UPDATE {} SET active = false WHERE email = %s").format(
        sql.Identifier(app_endpoints.USER_TABLE)
    )
    with psycopg.connect(shared_stack.database_url, connect_timeout=5) as conn:
        conn.execute(disable, (email,))
    _assert_refused(_whoami(shared_stack, f"Bearer {token}"))
