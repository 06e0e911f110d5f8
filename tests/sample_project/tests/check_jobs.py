"""Background jobs: what a request enqueued, and a real worker running it."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from notes_app.jobs import archive_note
from notes_app.models import Note

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

    from flaskstack.testing import CsrfToken, EnqueuedJobs, JobsWorker


@pytest.fixture
def flaskstack_config(flaskstack_config: dict[str, t.Any]) -> dict[str, t.Any]:
    return {**flaskstack_config, "FLASKSTACK_JOBS": True}


def add_note(db_session: Session, title: str) -> int:
    note = Note(title=title)
    db_session.add(note)
    db_session.commit()
    return note.id


def test_a_request_enqueues_and_a_worker_runs_it(
    client: FlaskClient,
    csrf_token: CsrfToken,
    db_session: Session,
    enqueued_jobs: EnqueuedJobs,
    jobs_worker: JobsWorker,
) -> None:
    note_id = add_note(db_session, "groceries")
    response = client.post(f"/notes/{note_id}/archive", headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 202
    (job,) = enqueued_jobs.of(archive_note)
    assert job.args == (note_id,)
    (ran,) = jobs_worker.run()
    assert (ran.status, ran.result) == ("finished", "archived: groceries")
    assert list(enqueued_jobs) == []
    title = db_session.scalar(sa.select(Note.title).where(Note.id == note_id))
    assert title == "archived: groceries"


def test_a_request_that_fails_enqueues_nothing(
    client: FlaskClient,
    csrf_token: CsrfToken,
    db_session: Session,
    enqueued_jobs: EnqueuedJobs,
    jobs_worker: JobsWorker,
) -> None:
    note_id = add_note(db_session, "taxes")
    client.application.testing = False  # the error becomes a 500, as in production
    response = client.post(
        f"/notes/{note_id}/archive?fail=1", headers={"X-CSRFToken": csrf_token(client)}
    )
    assert response.status_code == 500
    assert len(enqueued_jobs) == 0
    assert jobs_worker.run() == []
