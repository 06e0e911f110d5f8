"""The floor: plain Flask with redis-py and SQLAlchemy Core, no extensions.

Does by hand only what the other apps' endpoints need, as directly as the
primitives allow: a signed session id in the cookie and the session (user id,
CSRF token) as JSON in Redis, read with one ``GET``; SQL through Core on an
autocommit engine, so a read is exactly its ``SELECT``; API tokens looked up
by their SHA-256; the cached view stored as rendered HTML. Configured from
``DATABASE_URL``, ``REDIS_URL`` and ``SECRET_KEY`` in the environment. Serve
it with ``gunicorn 'bare_app:create_app()'``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import typing as t

import benchdata
import redis
import sqlalchemy as sa
from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request
from markupsafe import Markup, escape

if t.TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

COOKIE = "sid"
SESSION_SECONDS = 31 * 24 * 3600
PREFIX = "bare:"

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320)),
    sa.Column("active", sa.Boolean),
)
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer),
    sa.Column("token_hash", sa.String(64)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)
notes = sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(200)),
    sa.Column("body", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
feedback_table = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer),
    sa.Column("message", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)

engine: sa.Engine
store: redis.Redis
secret: bytes


# -- sessions ------------------------------------------------------------------


def _sign(sid: str) -> str:
    return sid + "." + hmac.new(secret, sid.encode(), hashlib.sha256).hexdigest()


def _session() -> dict[str, t.Any]:
    """The request's session, read from Redis on first use (one ``GET``)."""
    if "session" not in g:
        g.sid, g.session = None, {}
        sid, _, signature = request.cookies.get(COOKIE, "").partition(".")
        if sid and hmac.compare_digest(_sign(sid), f"{sid}.{signature}"):
            raw = store.get(PREFIX + "session:" + sid)
            if raw is not None:
                g.sid, g.session = sid, json.loads(raw)
    return t.cast("dict[str, t.Any]", g.session)


def _save_session(response: Response, data: dict[str, t.Any], new_id: bool = False) -> None:
    sid = g.get("sid")
    if sid is None or new_id:
        sid = secrets.token_urlsafe(32)
    store.set(PREFIX + "session:" + sid, json.dumps(data), ex=SESSION_SECONDS)
    response.set_cookie(COOKIE, _sign(sid), max_age=SESSION_SECONDS, httponly=True)


def _user() -> sa.Row[t.Any] | None:
    user_id = _session().get("user_id")
    if user_id is None:
        return None
    with engine.connect() as conn:
        query = sa.select(users.c.id, users.c.email).where(users.c.id == user_id, users.c.active)
        return conn.execute(query).first()


def _token_user_id() -> int | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    query = (
        sa.select(users.c.id)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None), users.c.active)
    )
    with engine.connect() as conn:
        return conn.execute(query).scalar()


# -- views -----------------------------------------------------------------------


def page() -> ResponseReturnValue:
    return render_template("page.html", title=benchdata.PAGE_TITLE, items=benchdata.PAGE_ITEMS)


def me() -> ResponseReturnValue:
    user = _user()
    if user is None:
        abort(401)
    return jsonify(id=user.id, email=user.email)


def cached() -> ResponseReturnValue:
    key = PREFIX + "cache:cached"
    hit = store.get(key)
    if hit is not None:
        return Response(hit, mimetype="text/html")
    with engine.connect() as conn:
        query = sa.select(notes).order_by(notes.c.id.desc()).limit(benchdata.LATEST_NOTES)
        html = render_template("notes.html", notes=conn.execute(query).all())
    store.set(key, html.encode(), ex=benchdata.CACHE_SECONDS)
    return Response(html, mimetype="text/html")


def feedback() -> ResponseReturnValue:
    session = _session()
    user_id = session.get("user_id")
    if user_id is None:
        abort(401)
    if request.method == "POST":
        token = request.form.get("csrf_token", "")
        if not token or not hmac.compare_digest(token, session.get("csrf_token", "")):
            abort(400, "The CSRF token is missing or wrong.")
        message = request.form.get("message", "").strip()
        if message and len(message) <= benchdata.MESSAGE_MAX_LENGTH:
            with engine.connect() as conn:
                conn.execute(
                    feedback_table.insert().values(
                        user_id=user_id,
                        message=message,
                        created_at=dt.datetime.now(dt.timezone.utc),
                    )
                )
            return redirect("/me", 303)
    token = session.get("csrf_token")
    field = Markup('<input type="hidden" name="csrf_token" value="{}">')
    if token is not None:
        return render_template("feedback.html", csrf_field=field.format(escape(token)))
    token = secrets.token_urlsafe(32)
    response = Response(render_template("feedback.html", csrf_field=field.format(token)))
    _save_session(response, {**session, "csrf_token": token})
    return response


def api_note(note_id: int) -> ResponseReturnValue:
    if _token_user_id() is None:
        abort(401)
    with engine.connect() as conn:
        note = conn.execute(sa.select(notes).where(notes.c.id == note_id)).first()
    if note is None:
        abort(404)
    return jsonify(
        id=note.id, title=note.title, body=note.body, created_at=note.created_at.isoformat()
    )


def api_notes() -> ResponseReturnValue:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    per_page = request.args.get("per_page", benchdata.DEFAULT_PER_PAGE, type=int)
    per_page = min(max(per_page or 1, 1), benchdata.MAX_PER_PAGE)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar_one()
        rows = conn.execute(
            sa.select(notes.c.id, notes.c.title, notes.c.created_at)
            .order_by(notes.c.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
    return jsonify(
        items=[
            {"id": row.id, "title": row.title, "created_at": row.created_at.isoformat()}
            for row in rows
        ],
        page=page,
        per_page=per_page,
        total=total,
        pages=-(-total // per_page),
    )


def bench_login(user_id: int) -> ResponseReturnValue:
    """Sign a seeded user in (the harness's way to get a session cookie)."""
    response = jsonify(user=user_id)
    _save_session(response, {"user_id": user_id}, new_id=True)
    return response


def create_app() -> Flask:
    global engine, store, secret
    engine = sa.create_engine(
        os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    store = redis.Redis.from_url(os.environ["REDIS_URL"])
    secret = os.environ["SECRET_KEY"].encode()

    app = Flask(__name__)
    app.add_url_rule("/", view_func=page)
    app.add_url_rule("/me", view_func=me)
    app.add_url_rule("/cached", view_func=cached)
    app.add_url_rule("/feedback", view_func=feedback, methods=["GET", "POST"])
    app.add_url_rule("/api/notes/<int:note_id>", view_func=api_note)
    app.add_url_rule("/api/notes", view_func=api_notes)
    app.add_url_rule("/bench/login/<int:user_id>", view_func=bench_login)
    return app
