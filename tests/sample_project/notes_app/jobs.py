"""A background job: archiving a note, run by a worker after the request."""

from __future__ import annotations

from flaskstack import db, jobs

from .models import Note


@jobs.job
def archive_note(note_id: int) -> str:
    """Prefix the note's title with "archived: " and return the new title."""
    note = db.session.get(Note, note_id)
    if note is None:  # deleted since: nothing to do
        return ""
    note.title = f"archived: {note.title}"
    db.session.commit()
    return note.title
