"""A small library app for ``tests/test_adoption_migrations.py``, run with ``FLASK_APP=library``.

It exists in two forms, chosen by environment variables, so that one
database can live through an app's history:

- ``LIBRARY_STACK=plain``: the app as written before flaskstack, with its own
  ``SQLAlchemy()`` (no naming convention) and ``Migrate``; its migration
  history is written by Flask-Migrate's own template.
- ``LIBRARY_STACK=flaskstack`` (the default): the same models on
  ``flaskstack.db``, wired by ``flaskstack.init_app``.

``LIBRARY_VERSION=2`` lengthens ``author.name`` (a change SQLite makes by
rebuilding ``author``, which ``book`` references). ``LIBRARY_IMPORT_MODELS=0``
is a factory that forgets to import its models.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask, jsonify, request

STACK = os.environ.get("LIBRARY_STACK", "flaskstack")

if STACK == "plain":
    from flask_migrate import Migrate
    from flask_sqlalchemy import SQLAlchemy

    db = SQLAlchemy()
    migrate = Migrate()
else:
    import flaskstack
    from flaskstack import db


def create_app() -> Flask:
    app = Flask(__name__)
    if STACK == "plain":
        url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        db.init_app(app)
        migrate.init_app(app, db)
    else:
        flaskstack.init_app(app)
    if os.environ.get("LIBRARY_IMPORT_MODELS", "1") == "1":
        from . import models

        @app.post("/books")
        def add_book() -> t.Any:
            data = request.get_json()
            book = models.Book(title=data["title"], author_id=data["author_id"])
            db.session.add(book)
            db.session.commit()
            return jsonify(id=book.id), 201

    return app
