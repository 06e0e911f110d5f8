"""``flask example …``: commands of the example app."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from flaskstack import db

from .models import Note

__all__ = ["DEMO_NOTES", "example"]

DEMO_NOTES: tuple[tuple[str, str], ...] = (
    (
        "Welcome to flaskstack",
        "This page lists the notes in the database, newest first. /notes has them as JSON.",
    ),
    (
        "Check the set-up",
        "Run 'flask --app example:create_app stack check' to see the configuration, "
        "database and migration checks.",
    ),
    (
        "Health endpoints",
        "/healthz answers while the process serves requests; /readyz when the database answers.",
    ),
)
"""The notes ``flask example seed`` makes sure exist, as (title, body)."""

example = AppGroup("example", help="Commands of the example app.")


@example.command("seed")
def seed_command() -> None:
    """Add the demo notes that are not there yet (safe to run again)."""
    existing = set(db.session.scalars(sa.select(Note.title)))
    missing = [(title, body) for title, body in DEMO_NOTES if title not in existing]
    # Added last to first: the notes share one timestamp, and pages list the newest first.
    db.session.add_all(Note(title=title, body=body) for title, body in reversed(missing))
    db.session.commit()
    click.echo(f"Added {len(missing)} demo note(s); {len(existing) + len(missing)} in total.")
