"""The notes API, served at /api/notes."""

from flaskstack import api, cache, db, rest
from flaskstack.auth import auth_required, current_user

from .models import Note

NOTE = {
    "id": rest.fields.Integer,
    "title": rest.fields.String,
    "body": rest.fields.String,
    "created_at": rest.fields.DateTime,
}


class NewNote(rest.Schema):
    title = rest.String(required=True, min_length=1, max_length=200)
    body = rest.String(default="")


@api.resource("/notes")
class Notes(rest.Resource):
    method_decorators = {"post": [auth_required]}

    @rest.paginated(NOTE)
    def get(self):
        """List the notes, oldest first."""
        return db.select(Note).order_by(Note.id)

    @rest.body(NewNote)
    @rest.marshal_with(NOTE, status=201)
    def post(self, body):
        """Write a note."""
        note = Note(author=current_user, **body)
        db.session.add(note)
        db.session.commit()
        cache.delete("latest-notes")  # the front page shows it now
        return note
