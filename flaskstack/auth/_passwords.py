"""Password hashing: Werkzeug's scrypt, rehashing, and length limits.

Hashes carry their method and parameters (``scrypt:32768:8:1$salt$hash``);
:func:`needs_rehash` compares them with ``FLASKSTACK_PASSWORD_METHOD`` so a
login upgrades an old hash. Passwords longer than
``FLASKSTACK_PASSWORD_MAX_LENGTH`` are refused before any hashing, so a
megabyte "password" costs nothing. :func:`verify_password` against ``None`` (an
unknown account) checks a dummy hash of the same method, so an unknown email
takes as long as a wrong password.
"""

from __future__ import annotations

import functools
import secrets

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

__all__ = [
    "PasswordPolicyError",
    "check_policy",
    "hash_password",
    "hash_password_unchecked",
    "needs_rehash",
    "verify_password",
]


class PasswordPolicyError(ValueError):
    """The password is too short or too long for the configured policy."""


def _method() -> str:
    method: str = current_app.config["FLASKSTACK_PASSWORD_METHOD"]
    return method


@functools.lru_cache(maxsize=8)
def _spec_and_dummy(method: str) -> tuple[str, str]:
    """The full parameter string Werkzeug writes for ``method``, and a dummy hash."""
    dummy = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return dummy.split("$", 1)[0], dummy


def check_policy(password: str) -> None:
    """Raise :class:`PasswordPolicyError` unless the length is within the limits."""
    low = current_app.config["FLASKSTACK_PASSWORD_MIN_LENGTH"]
    high = current_app.config["FLASKSTACK_PASSWORD_MAX_LENGTH"]
    if len(password) < low:
        raise PasswordPolicyError(f"Use at least {low} characters.")
    if len(password) > high:
        raise PasswordPolicyError(f"Use at most {high} characters.")


def hash_password(password: str) -> str:
    """Hash ``password`` with the configured method, after the policy check."""
    check_policy(password)
    return generate_password_hash(password, method=_method())


def hash_password_unchecked(password: str) -> str:
    """Hash a password already known to be right (a rehash at login): no length policy."""
    return generate_password_hash(password, method=_method())


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``.

    ``None`` (no such account) is checked against a dummy hash, so the answer
    takes as long as for a real account. A password over the maximum length
    is refused without hashing.
    """
    if len(password) > current_app.config["FLASKSTACK_PASSWORD_MAX_LENGTH"]:
        return False
    if password_hash is None:
        check_password_hash(_spec_and_dummy(_method())[1], password)
        return False
    try:
        return check_password_hash(password_hash, password)
    except ValueError:  # an unknown or malformed method in the stored hash
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with another method or other parameters."""
    return password_hash.split("$", 1)[0] != _spec_and_dummy(_method())[0]
