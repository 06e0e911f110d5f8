"""A small notes app built on flaskstack: the project of the quickstart."""

from collections.abc import Mapping
from typing import Any

import flaskstack
from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    flaskstack.init_app(app, config)

    from . import api, models, views  # noqa: F401  (they declare tables and resources)

    app.register_blueprint(views.bp)
    return app
