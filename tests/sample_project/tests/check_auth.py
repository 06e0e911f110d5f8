"""Users, sessions, API tokens and CSRF tokens made by the plugin are the real thing."""

from __future__ import annotations

import typing as t

from flaskstack import get_state
from flaskstack.testing import DEFAULT_PASSWORD

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from flaskstack.testing import ApiClientFactory, CsrfToken, Login, MakeUser

JSON = {"Accept": "application/json"}


def test_login_makes_a_server_side_session(
    app: Flask, client: FlaskClient, make_user: MakeUser, login: Login, redis: t.Any
) -> None:
    user = make_user(email="Ann@Example.com")
    assert client.get("/me", headers=JSON).status_code == 401
    login(client, user)
    assert client.get("/me", headers=JSON).get_json() == {"email": "ann@example.com"}
    connection = get_state(app).redis
    assert connection is not None
    assert len(redis.keys(connection.key("session", "*"))) == 1


def test_signing_in_through_the_form_with_csrf_on(
    client: FlaskClient, make_user: MakeUser, csrf_token: CsrfToken
) -> None:
    make_user(email="bob@example.com")
    form = {"email": "bob@example.com", "password": DEFAULT_PASSWORD}
    assert client.post("/auth/login", data=form).status_code == 400  # no CSRF token
    response = client.post("/auth/login", data={**form, "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert client.get("/me", headers=JSON).get_json() == {"email": "bob@example.com"}


def test_logging_out_through_the_form_ends_the_session(
    client: FlaskClient, make_user: MakeUser, login: Login, csrf_token: CsrfToken
) -> None:
    login(client, make_user())
    token = csrf_token(client)
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/me", headers=JSON).status_code == 401


def test_an_api_client_sends_a_real_token(
    api_client: ApiClientFactory, make_user: MakeUser, client: FlaskClient
) -> None:
    user = make_user(email="carol@example.com")
    api = api_client(user)
    assert api.get("/me", headers=JSON).get_json() == {"email": "carol@example.com"}
    # A token-authenticated request needs no CSRF token; a cookie one does.
    assert api.post("/notes", json={"title": "by token"}).status_code == 201
    assert client.post("/notes", json={"title": "by cookie"}).status_code == 400
    assert api_client().get("/me", headers=JSON).status_code == 200
