"""The user module."""

from . import views  # noqa: F401
