import re

import pytest
from config import TestConfig
from microblog import create_app, db
from microblog.models import User


@pytest.fixture
def app():
    app = create_app(TestConfig)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def susan(app):
    user = User(username="susan", email="susan@example.com")
    user.set_password("cat")
    db.session.add(user)
    db.session.commit()
    return user


def csrf_token(client, path):
    """The CSRF token of the form on the page at ``path``."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def login(client, username, password, remember=False):
    data = {
        "username": username,
        "password": password,
        "csrf_token": csrf_token(client, "/auth/login"),
    }
    if remember:
        data["remember_me"] = "y"
    return client.post("/auth/login", data=data)
