"""Read-only pages of the example app: the notes as HTML and as JSON."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, render_template

from flaskstack import db

from .models import Note

__all__ = ["bp"]

bp = Blueprint("example", __name__)


def _all_notes() -> list[Note]:
    query = sa.select(Note).order_by(Note.created_at.desc(), Note.id.desc())
    return list(db.session.scalars(query))


@bp.get("/")
def index() -> str:
    """The notes, newest first, as an HTML page."""
    return render_template("index.html", notes=_all_notes())


@bp.get("/notes")
def notes() -> Response:
    """The notes, newest first, as ``{"notes": [...]}``."""
    return jsonify(notes=[note.to_dict() for note in _all_notes()])
