"""Helpers shared by the reference app's tests."""

from __future__ import annotations

import re
import typing as t

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

TIMESTAMP = re.compile(
    r"^\d{4,}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d\.\d+(?:[+-][0-2]\d:[0-5]\d|Z)$"
)
"""The RealWorld collection's test of ``createdAt`` and ``updatedAt`` (fractional seconds)."""

PASSWORD = "password-of-tests"


def sign_up(client: FlaskClient, username: str) -> str:
    """Register ``username`` through the API; return the token it got."""
    response = client.post(
        "/api/users",
        json={
            "user": {
                "username": username,
                "email": f"{username}@example.com",
                "password": PASSWORD,
            }
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    token: str = response.get_json()["user"]["token"]
    return token


def auth(token: str, scheme: str = "Token") -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"{scheme} {token}"}


def write_article(
    client: FlaskClient,
    token: str,
    title: str = "How to train your dragon",
    tags: list[str] | None = None,
) -> dict[str, t.Any]:
    """Create an article through the API; return it."""
    response = client.post(
        "/api/articles",
        json={
            "article": {
                "title": title,
                "description": "Ever wonder how?",
                "body": "Very carefully.",
                "tagList": ["training", "dragons"] if tags is None else tags,
            }
        },
        headers=auth(token),
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    article: dict[str, t.Any] = response.get_json()["article"]
    return article


def form_token(response: TestResponse) -> str:
    """The CSRF token in the first form of an HTML page."""
    found = re.search(
        r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True)
    )
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)
