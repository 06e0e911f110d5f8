"""The notes API, served at /api/notes."""

from flaskstack import api, cache, db, rest
from flaskstack.auth import auth_required, current_user

from . import models


class Note(rest.Schema):
    """A note: what a client sends, and what the API answers."""

    id = rest.Integer(dump_only=True)
    title = rest.String(required=True, strip=True, min_length=1, max_length=200)
    body = rest.String(default="")
    created_at = rest.DateTime(dump_only=True)


@api.resource("/notes")
class Notes(rest.Resource):
    method_decorators = {"post": [auth_required]}

    @rest.paginated(Note)
    def get(self):
        """List the notes, oldest first."""
        return db.select(models.Note).order_by(models.Note.id)

    @rest.body(Note)
    @rest.marshal_with(Note, status=201)
    def post(self, body):
        """Write a note."""
        note = models.Note(author=current_user, **body)
        db.session.add(note)
        db.session.commit()
        cache.delete("latest-notes")  # the front page shows it now
        return note
