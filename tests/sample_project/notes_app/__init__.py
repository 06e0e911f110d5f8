"""A tiny app built on flaskstack, tested with nothing but the pytest plugin.

``tests/test_testing.py`` copies this project into a temporary directory and
runs pytest there; its only pytest configuration is ``flaskstack_app`` in
``pytest.ini``. The test modules are stored as ``tests/check_*.py`` so that
flaskstack's own test run does not collect them; the copy renames them to
``test_*.py``.
"""

from __future__ import annotations

import typing as t

from flask import Flask

import flaskstack

__all__ = ["create_app"]


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Create the app; ``config`` overrides every other settings source."""
    app = Flask(__name__)
    flaskstack.init_app(app, config)

    from . import models, views  # noqa: F401  # models declare their tables

    app.register_blueprint(views.bp)
    return app
