"""Users of the reference app, made the way its API makes them."""

from __future__ import annotations

import json
import urllib.request
import uuid

PASSWORD = "correct horse battery"


def sign_up(base: str) -> tuple[str, str]:
    """A new user with :data:`PASSWORD`, made through RealWorld's API (which mails nothing);
    their email and username."""
    username = f"reader{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    body = {"user": {"username": username, "email": email, "password": PASSWORD}}
    request = urllib.request.Request(
        base + "/api/users",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    return email, username
