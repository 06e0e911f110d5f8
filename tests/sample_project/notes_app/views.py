"""Views that commit, roll back, use the engine directly, Redis and auth."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from flaskstack import db
from flaskstack.auth import auth_required, current_user
from flaskstack.redis import get_redis

from .models import Note

if t.TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

bp = Blueprint("notes", __name__)


def _titles() -> list[str]:
    return list(db.session.scalars(sa.select(Note.title).order_by(Note.id)))


@bp.get("/notes")
def list_notes() -> ResponseReturnValue:
    return jsonify(titles=_titles())


@bp.post("/notes")
def add_note() -> ResponseReturnValue:
    data = request.get_json(silent=True) or request.form
    note = Note(title=data["title"])
    db.session.add(note)
    db.session.commit()
    return jsonify(id=note.id), 201


@bp.post("/notes/undo")
def add_then_undo() -> ResponseReturnValue:
    """Commit one note, then add another and roll it back."""
    db.session.add(Note(title="kept"))
    db.session.commit()
    db.session.add(Note(title="discarded"))
    db.session.flush()
    db.session.rollback()
    return jsonify(titles=_titles())


@bp.post("/notes/raw")
def add_note_with_the_engine() -> ResponseReturnValue:
    """Write and read with db.engine directly, as reporting or bulk code does."""
    with db.engine.begin() as connection:
        connection.execute(sa.insert(Note).values(title="raw"))
    with db.engine.connect() as connection:
        connection.execute(sa.insert(Note).values(title="never committed"))
    with db.engine.connect() as connection:
        count = connection.scalar(sa.select(sa.func.count(Note.id)))
    return jsonify(count=count)


@bp.post("/notes/<int:note_id>/archive")
def archive(note_id: int) -> ResponseReturnValue:
    """Archive the note later, in a worker; ``?fail=1`` fails after enqueueing (rolled back)."""
    from .jobs import archive_note

    note = db.get_or_404(Note, note_id)
    note.title = note.title.strip()
    archive_note.enqueue(note.id)
    if request.args.get("fail"):
        raise RuntimeError("the request fails after enqueueing")
    db.session.commit()
    return jsonify(queued=True), 202


@bp.post("/visits")
def visit() -> ResponseReturnValue:
    connection = get_redis()
    key = connection.key("visits")
    return jsonify(visits=connection.run(lambda client: client.incr(key)))


@bp.get("/me")
@auth_required
def me() -> ResponseReturnValue:
    return jsonify(email=current_user.email)
