"""Pages: a cached list of the latest notes, and the signed-in user's notes."""

from flask import Blueprint
from flaskstack import cache, db
from flaskstack.auth import auth_required, current_user

from .models import Note

bp = Blueprint("notes", __name__)


@bp.get("/")
@cache.cached(timeout=60, key_prefix="latest-notes")
def latest():
    notes = db.session.scalars(db.select(Note).order_by(Note.id.desc()).limit(10))
    return {"latest": [note.title for note in notes]}


@bp.get("/mine")
@auth_required
def mine():
    query = db.select(Note).where(Note.author_id == current_user.id).order_by(Note.id)
    notes = db.session.scalars(query)
    return {"email": current_user.email, "notes": [note.title for note in notes]}
