"""The benchmark app wired by hand, the way each library's documentation shows.

Flask-SQLAlchemy, Flask-Login (sessions, and API tokens through a
``request_loader``), Flask-WTF (``CSRFProtect`` and a ``FlaskForm``),
Flask-RESTful, Flask-Caching (``RedisCache``) and Flask-Session (``redis``),
each set up in the app factory with its documented defaults. Configured from
``DATABASE_URL``, ``REDIS_URL`` and ``SECRET_KEY`` in the environment. Serve
it with ``gunicorn 'hw_app:create_app()'``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import typing as t

import benchdata
import sqlalchemy as sa
from flask import Flask, jsonify, redirect, render_template
from flask_caching import Cache
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
from flask_restful import Api, Resource, fields, marshal, marshal_with
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect, FlaskForm
from redis import Redis
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

if t.TYPE_CHECKING:
    from flask import Request
    from flask.typing import ResponseReturnValue


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
cache = Cache()
api = Api(prefix="/api")


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    @property
    def is_active(self) -> bool:
        return self.active


class ApiToken(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    user: Mapped[User] = relationship()


class Note(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class Feedback(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    message: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=lambda: dt.datetime.now(dt.timezone.utc)
    )


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@login_manager.request_loader
def load_user_from_request(request: Request) -> User | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    query = (
        db.select(User)
        .join(ApiToken)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None), User.active)
    )
    return db.session.execute(query).scalar_one_or_none()


class FeedbackForm(FlaskForm):  # type: ignore[misc]
    message = TextAreaField(validators=[DataRequired(), Length(max=benchdata.MESSAGE_MAX_LENGTH)])


NOTE_FIELDS = {
    "id": fields.Integer,
    "title": fields.String,
    "body": fields.String,
    "created_at": fields.DateTime(dt_format="iso8601"),
}
NOTE_SUMMARY_FIELDS = {
    "id": fields.Integer,
    "title": fields.String,
    "created_at": fields.DateTime(dt_format="iso8601"),
}


class NoteItem(Resource):  # type: ignore[misc]
    method_decorators = (login_required,)

    @marshal_with(NOTE_FIELDS)
    def get(self, note_id: int) -> Note:
        return db.get_or_404(Note, note_id)


class NoteList(Resource):  # type: ignore[misc]
    def get(self) -> dict[str, t.Any]:
        page = db.paginate(
            db.select(Note).order_by(Note.id),
            per_page=benchdata.DEFAULT_PER_PAGE,
            max_per_page=benchdata.MAX_PER_PAGE,
        )
        return {
            "items": marshal(page.items, NOTE_SUMMARY_FIELDS),
            "page": page.page,
            "per_page": page.per_page,
            "total": page.total,
            "pages": page.pages,
        }


api.add_resource(NoteItem, "/notes/<int:note_id>")
api.add_resource(NoteList, "/notes")


def page() -> ResponseReturnValue:
    return render_template("page.html", title=benchdata.PAGE_TITLE, items=benchdata.PAGE_ITEMS)


@login_required
def me() -> ResponseReturnValue:
    return jsonify(id=current_user.id, email=current_user.email)


@cache.cached(timeout=benchdata.CACHE_SECONDS)
def cached() -> ResponseReturnValue:
    query = db.select(Note).order_by(Note.id.desc()).limit(benchdata.LATEST_NOTES)
    return render_template("notes.html", notes=db.session.scalars(query).all())


@login_required
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


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"].replace(
        "postgresql://", "postgresql+psycopg://", 1
    )
    app.config["SESSION_TYPE"] = "redis"
    app.config["SESSION_REDIS"] = Redis.from_url(os.environ["REDIS_URL"])
    app.config["CACHE_TYPE"] = "RedisCache"
    app.config["CACHE_REDIS_URL"] = os.environ["REDIS_URL"]

    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    cache.init_app(app)
    Session(app)
    api.init_app(app)

    app.add_url_rule("/", view_func=page)
    app.add_url_rule("/me", view_func=me)
    app.add_url_rule("/cached", view_func=cached)
    app.add_url_rule("/feedback", view_func=feedback, methods=["GET", "POST"])
    app.add_url_rule("/bench/login/<int:user_id>", view_func=bench_login)
    return app
