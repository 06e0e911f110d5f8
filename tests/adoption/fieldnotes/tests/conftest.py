"""Defines fixtures available to all tests."""

import re

import pytest
from fieldnotes.app import create_app
from fieldnotes.database import db as _db
from fieldnotes.user.models import User
from flask_migrate import downgrade, upgrade


@pytest.fixture
def app():
    """Create application for the tests."""
    _app = create_app("tests.settings")
    ctx = _app.test_request_context()
    ctx.push()

    yield _app

    ctx.pop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    """Create the database from the migrations, and remove it again."""
    upgrade()

    yield _db

    # Explicitly close DB connection
    _db.session.close()
    downgrade(revision="base")


@pytest.fixture
def user(db):
    """Create an active user."""
    return User.create(
        username="jane", email="jane@example.com", password="myprecious", active=True
    )


def csrf_token(client, path):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def log_in(client, username="jane", password="myprecious"):
    return client.post(
        "/",
        data={"username": username, "password": password, "csrf_token": csrf_token(client, "/")},
    )
