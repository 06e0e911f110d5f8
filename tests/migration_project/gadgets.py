"""A tiny flaskstack project whose models change with ``MODEL_VERSION``.

``tests/test_migrations.py`` copies this file into a temporary directory and
runs the real ``flask db`` and ``flask stack check`` commands on it, in
subprocesses, with ``FLASK_APP=gadgets``.

- ``MODEL_VERSION=1`` (the default): ``gadget.name`` is ``String(50)`` and
  ``gadget.code`` is unique, through a constraint the model leaves unnamed
  (the naming convention calls it ``uq_gadget_code``).
- ``MODEL_VERSION=2``: ``name`` is ``String(200)`` and ``code`` is no longer
  unique.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask, jsonify

import flaskstack
from flaskstack import db

MODEL_VERSION = os.environ.get("MODEL_VERSION", "1")
if MODEL_VERSION not in ("1", "2"):
    raise RuntimeError(f"MODEL_VERSION must be 1 or 2, not {MODEL_VERSION!r}")


class Gadget(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "gadget"

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(20), nullable=False, unique=MODEL_VERSION == "1")
    name = db.Column(db.String(50 if MODEL_VERSION == "1" else 200), nullable=False)
    enabled = db.Column(db.Boolean, nullable=False, server_default=sa.true())


def create_app() -> Flask:
    app = Flask(__name__)
    flaskstack.init_app(app)

    @app.get("/gadgets")
    def list_gadgets() -> object:
        gadgets = db.session.execute(db.select(Gadget).order_by(Gadget.id)).scalars()
        return jsonify([gadget.name for gadget in gadgets])

    return app
