"""Code under test may commit and roll back; so may the test itself."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from notes_app.models import Note

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

    from flaskstack.testing import CsrfToken, MakeUser


def titles(db_session: Session) -> list[str]:
    return list(db_session.scalars(sa.select(Note.title).order_by(Note.id)))


def test_a_view_that_rolls_back_keeps_what_it_committed(
    client: FlaskClient, csrf_token: CsrfToken, db_session: Session
) -> None:
    response = client.post("/notes/undo", headers={"X-CSRFToken": csrf_token(client)})
    assert response.get_json() == {"titles": ["kept"]}
    assert titles(db_session) == ["kept"]


def test_the_test_session_commits_and_rolls_back(db_session: Session) -> None:
    db_session.add(Note(title="committed"))
    db_session.commit()
    db_session.add(Note(title="rolled back"))
    db_session.flush()
    db_session.rollback()
    assert titles(db_session) == ["committed"]


def test_a_failed_statement_is_rolled_back_and_the_test_goes_on(
    make_user: MakeUser, db_session: Session
) -> None:
    make_user(email="same@example.com")
    with pytest.raises(sa.exc.IntegrityError):
        make_user(email="same@example.com")
    db_session.rollback()
    db_session.add(Note(title="after the error"))
    db_session.commit()
    assert titles(db_session) == ["after the error"]


def test_the_engine_itself_works_inside_the_test_transaction(
    client: FlaskClient, csrf_token: CsrfToken, db_session: Session
) -> None:
    response = client.post("/notes/raw", headers={"X-CSRFToken": csrf_token(client)})
    assert response.get_json() == {"count": 1}
    assert titles(db_session) == ["raw"]
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()


def test_and_none_of_that_is_left(db_session: Session) -> None:
    assert titles(db_session) == []
