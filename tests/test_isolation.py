"""The plugin's isolation, in this suite: what one test commits, the next never sees.

The two tests run in file order. The first commits a row (through a request
and through ``db_session``) and writes Redis keys; the second finds none of
them. The suite's plugin database is PostgreSQL; the plugin's own tests
(``test_testing.py``) prove the same on SQLite and under pytest-xdist.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask, session

from flaskstack import db

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

SHARED_REDIS = "redis://127.0.0.1:6379/0"
_seen: dict[str, t.Any] = {}


class IsolationNote(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "isolation_note"

    id = sa.Column(sa.Integer, primary_key=True)
    text = sa.Column(sa.String(50), nullable=False)


def add_view(app: Flask) -> None:
    @app.get("/write/<text>")
    def write(text: str) -> str:
        db.session.add(IsolationNote(text=text))
        db.session.commit()
        session["wrote"] = text  # a server-side session: a Redis key
        return "written"


def count_notes(session: Session) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(IsolationNote)).scalar_one()


def test_first_writes_and_commits(
    app: Flask, client: FlaskClient, db_session: Session, redis: t.Any
) -> None:
    add_view(app)
    assert client.get("/write/through-a-request").text == "written"
    db_session.add(IsolationNote(text="through db_session"))
    db_session.commit()
    assert count_notes(db_session) == 2
    namespace = app.config["FLASKSTACK_NAMESPACE"]
    redis.set(f"{namespace}:mine", b"1")
    keys = sorted(redis.scan_iter(match=f"{namespace}:*"))
    assert len(keys) == 2  # the session and the test's own key
    _seen.update(database=app.config["SQLALCHEMY_DATABASE_URI"], keys=keys)


def test_second_sees_none_of_it(app: Flask, db_session: Session, redis: t.Any) -> None:
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    assert count_notes(db_session) == 0
    # Run alone (or on another xdist worker) there is nothing to compare with;
    # no rows is still what every test must see.
    if _seen:
        assert app.config["SQLALCHEMY_DATABASE_URI"] == _seen["database"]  # the same database
        assert redis.exists(*_seen["keys"]) == 0
