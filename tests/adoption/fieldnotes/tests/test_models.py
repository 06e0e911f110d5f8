"""Model unit tests."""

import datetime as dt

from fieldnotes.user.models import Note, Role, User


def test_get_by_id(db):
    user = User.create(username="foo", email="foo@bar.com")
    assert User.get_by_id(user.id) == user
    assert User.get_by_id("nonsense") is None


def test_created_at_defaults_to_datetime(db):
    user = User.create(username="foo", email="foo@bar.com")
    assert isinstance(user.created_at, dt.datetime)


def test_check_password(db):
    user = User.create(username="foo", email="foo@bar.com", password="foobarbaz123")
    assert user.check_password("foobarbaz123")
    assert not user.check_password("barfoobaz")


def test_roles_and_notes(db):
    user = User.create(username="foo", email="foo@bar.com")
    Role.create(name="admin", user=user)
    Note.create(body="remember the milk", author=user)
    assert [role.name for role in user.roles] == ["admin"]
    assert [note.body for note in user.notes] == ["remember the milk"]
