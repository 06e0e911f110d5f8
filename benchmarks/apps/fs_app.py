"""The benchmark app on flaskstack: ``flaskstack.init_app`` with PostgreSQL and Redis.

Configured the 12-factor way, from ``DATABASE_URL``, ``REDIS_URL`` and
``SECRET_KEY`` in the environment, in the ``production`` profile. Serve it
with ``gunicorn 'fs_app:create_app()'``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import typing as t

import benchdata
import sqlalchemy as sa
from flask import Flask, jsonify, redirect, render_template
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

import flaskstack
from flaskstack import api, cache, db, rest
from flaskstack.auth import User, auth_required, current_user, login_user
from flaskstack.forms import Form
from flaskstack.limits import limit

if t.TYPE_CHECKING:
    from flask.typing import ResponseReturnValue


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Note(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, server_default=sa.func.now()
    )


class Feedback(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, server_default=sa.func.now()
    )


class FeedbackForm(Form):  # type: ignore[misc]
    message = TextAreaField(validators=[DataRequired(), Length(max=benchdata.MESSAGE_MAX_LENGTH)])


class NoteData(rest.Schema):
    """A note, as the API writes it."""

    id = rest.Integer()
    title = rest.String()
    body = rest.String()
    created_at = rest.DateTime()


class NoteSummary(rest.Schema):
    """A note in a list."""

    id = rest.Integer()
    title = rest.String()
    created_at = rest.DateTime()


class NoteItem(rest.Resource):  # type: ignore[misc]
    method_decorators = (auth_required,)

    @rest.marshal_with(NoteData)
    def get(self, note_id: int) -> Note:
        """One note."""
        return db.get_or_404(Note, note_id)


# Far above what a load run sends, so the endpoint measures the cost of counting.
RATE_LIMIT = "1000000/minute"


# Whether LimitedNoteItem is on the API yet (create_app may run more than once).
_LIMITED_ROUTE: list[type[rest.Resource]] = []


class LimitedNoteItem(NoteItem):
    """``NoteItem`` behind a rate limit per token, checked after authentication."""

    method_decorators = (limit(RATE_LIMIT), auth_required)


class NoteList(rest.Resource):  # type: ignore[misc]
    @rest.paginated(NoteSummary)
    def get(self) -> sa.Select[tuple[Note]]:
        """The notes, oldest first."""
        return sa.select(Note).order_by(Note.id)


api.add_resource(NoteItem, "/notes/<int:note_id>")
api.add_resource(NoteList, "/notes")


def page() -> ResponseReturnValue:
    return render_template("page.html", title=benchdata.PAGE_TITLE, items=benchdata.PAGE_ITEMS)


@auth_required
def me() -> ResponseReturnValue:
    return jsonify(id=current_user.id, email=current_user.email)


@cache.cached(timeout=benchdata.CACHE_SECONDS)
def cached() -> ResponseReturnValue:
    query = sa.select(Note).order_by(Note.id.desc()).limit(benchdata.LATEST_NOTES)
    return render_template("notes.html", notes=db.session.scalars(query).all())


@auth_required
def feedback() -> ResponseReturnValue:
    form = FeedbackForm()
    if form.validate_on_submit():
        db.session.add(Feedback(user_id=current_user.id, message=form.message.data))
        db.session.commit()
        return redirect("/me", 303)
    return render_template("feedback.html", csrf_field=form.csrf_token)


def bench_login(user_id: int) -> ResponseReturnValue:
    """Sign a seeded user in (the harness's way to get a session cookie)."""
    login_user(db.get_or_404(User, user_id))
    return jsonify(user=user_id)


STRONG_AUTH = {
    "FLASKSTACK_ROLES": True,
    "FLASKSTACK_TWO_FACTOR": True,
    "FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES": ["admin"],
    "FLASKSTACK_PASSKEYS": True,
    "FLASKSTACK_PASSKEYS_RP_ID": "localhost",
    "FLASKSTACK_PASSKEYS_ORIGINS": ["https://localhost"],
    "FLASKSTACK_OIDC_PROVIDERS": {
        "corporate": {
            "discovery_url": "https://id.example.com/.well-known/openid-configuration",
            "client_id": "stackbench",
            "client_secret": "stackbench-secret",
        }
    },
}
"""Roles, two-factor sign-in, passkeys and an identity provider, all configured.

No endpoint of the harness uses them: the variant that has them measures
what they cost the requests that do not.
"""


def create_app(
    rate_limits: bool = False, strong_auth: bool = False, metrics: bool = False
) -> Flask:
    """The app; ``rate_limits=True`` is the variant that also serves the rate-limited read.

    The other variant keeps ``FLASKSTACK_RATE_LIMITS`` off, as an app that
    limits nothing does, so its rows measure flaskstack without them.
    ``strong_auth=True`` configures :data:`STRONG_AUTH` as well. ``metrics=True``
    turns Prometheus metrics on, counted as under flaskstack's gunicorn
    configuration: in prometheus-client's multiprocess mode, in a directory the
    workers of one gunicorn master share (the harness starts gunicorn without
    that configuration, which would make it).
    """
    if metrics and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        directory = os.path.join(tempfile.gettempdir(), f"stackbench-metrics-{os.getppid()}")
        os.makedirs(directory, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # before prometheus-client is imported
    app = Flask(__name__)
    if rate_limits and not _LIMITED_ROUTE:
        api.add_resource(LimitedNoteItem, "/limited/notes/<int:note_id>")
        _LIMITED_ROUTE.append(LimitedNoteItem)
    config = {
        "FLASKSTACK_API_PER_PAGE": benchdata.DEFAULT_PER_PAGE,
        "FLASKSTACK_API_MAX_PER_PAGE": benchdata.MAX_PER_PAGE,
        # No API default: only the rate-limited read has a limit.
        "FLASKSTACK_RATE_LIMITS": rate_limits,
        # An app that sends no mail, as the others: production refuses the account
        # flows that mail links (password reset, address confirmation) without
        # MAIL_URL, and no endpoint measured here uses them.
        "FLASKSTACK_PASSWORD_RESET": False,
        "FLASKSTACK_EMAIL_CONFIRMATION": "off",
        **(STRONG_AUTH if strong_auth else {}),
        "FLASKSTACK_METRICS": metrics,
        # For experiments only (what would a setting change?); unset in recorded runs.
        **json.loads(os.environ.get("STACKBENCH_FLASKSTACK_CONFIG", "{}")),
    }
    flaskstack.init_app(app, config, profile="production")
    app.add_url_rule("/", view_func=page)
    app.add_url_rule("/me", view_func=me)
    app.add_url_rule("/cached", view_func=cached)
    app.add_url_rule("/feedback", view_func=feedback, methods=["GET", "POST"])
    app.add_url_rule("/bench/login/<int:user_id>", view_func=bench_login)
    return app
