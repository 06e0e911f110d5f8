"""Nothing a test writes, to the database or to Redis, reaches the next test."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from notes_app.models import Note

from flaskstack import get_state

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

    from flaskstack.testing import CsrfToken

# What the first test left behind, for the second one to look for.
LEFT_BEHIND: dict[str, list[t.Any]] = {}


def count_notes(db_session: Session) -> int:
    return db_session.scalar(sa.select(sa.func.count(Note.id))) or 0


def test_writes_and_commits_rows_and_redis_keys(
    app: Flask, client: FlaskClient, csrf_token: CsrfToken, db_session: Session, redis: t.Any
) -> None:
    headers = {"X-CSRFToken": csrf_token(client)}
    assert client.post("/notes", json={"title": "by a request"}, headers=headers).status_code == 201
    db_session.add(Note(title="by the test"))
    db_session.commit()
    assert client.post("/visits", headers=headers).get_json() == {"visits": 1}
    connection = get_state(app).redis
    assert connection is not None
    redis.set(connection.key("written-by-the-test"), "x")

    assert count_notes(db_session) == 2
    assert client.get("/notes").get_json() == {"titles": ["by a request", "by the test"]}
    keys = redis.keys(connection.key("*"))
    # The visit counter and the test's own key; the visitor's session (a CSRF
    # token only) stays in its signed cookie.
    assert len(keys) == 2
    LEFT_BEHIND["keys"] = keys
    LEFT_BEHIND["ids"] = list(db_session.scalars(sa.select(Note.id)))


def test_sees_none_of_it(client: FlaskClient, db_session: Session, redis: t.Any) -> None:
    assert LEFT_BEHIND, "runs after test_writes_and_commits_rows_and_redis_keys"
    assert count_notes(db_session) == 0
    assert client.get("/notes").get_json() == {"titles": []}
    assert redis.exists(*LEFT_BEHIND["keys"]) == 0
    assert db_session.scalars(sa.select(Note).where(Note.id.in_(LEFT_BEHIND["ids"]))).all() == []
