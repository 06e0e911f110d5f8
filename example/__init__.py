"""The reference app: a small notes site built on flaskstack's public API only.

Run it with ``make run`` from the repository root, or by hand::

    flask --app example:create_app db upgrade
    flask --app example:create_app example seed
    flask --app example:create_app run
"""

from __future__ import annotations

import typing as t

from flask import Flask

import flaskstack

__all__ = ["create_app"]


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Create the example app; ``config`` overrides every other settings source."""
    app = Flask(__name__)
    flaskstack.init_app(app, config)

    # Importing models declares the tables on flaskstack.db.
    from . import cli, models, views  # noqa: F401

    app.register_blueprint(views.bp)
    app.cli.add_command(cli.example)
    return app
