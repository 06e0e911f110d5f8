"""The forms of Conduit's pages, on :class:`flaskstack.forms.Form` (Flask-WTF, with CSRF)."""

from __future__ import annotations

import re
import typing as t

from flask import request
from werkzeug.exceptions import BadRequest
from wtforms import EmailField, PasswordField, StringField, TextAreaField, URLField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from flaskstack.forms import Form

from .models import IMAGE_URL_PATTERN, USERNAME_PATTERN, USERNAME_RULE

__all__ = ["ArticleForm", "CommentForm", "ConduitForm", "SettingsForm", "split_tags"]

_SUBMIT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _strip(value: str | None) -> str | None:
    """Surrounding spaces and NUL characters (which PostgreSQL cannot store) go."""
    return value.replace("\x00", "").strip() if isinstance(value, str) else value


def _drop_nul(value: str | None) -> str | None:
    return value.replace("\x00", "") if isinstance(value, str) else value


def split_tags(text: str | None) -> list[str]:
    """The tags typed in the editor, separated by commas or spaces."""
    return [part for part in re.split(r"[,\s]+", text or "") if part]


class ConduitForm(Form):
    """:class:`flaskstack.forms.Form`, refusing a JSON body that is not an object with a 400.

    Flask-WTF fills a form from a JSON body too, and fails with a 500 on one
    that is not an object (``false``, ``[1]``) or is nested too deeply. This
    works around that here until flaskstack's ``Form`` does it.
    """

    class Meta(Form.Meta):
        def wrap_formdata(self, form: t.Any, formdata: t.Any) -> t.Any:
            if request.is_json and request.method in _SUBMIT_METHODS and not request.form:
                try:
                    data = request.get_json(silent=True)
                except RecursionError:
                    data = None
                if not isinstance(data, dict):
                    raise BadRequest("Send the form's fields, or a JSON object of them.")
            return super().wrap_formdata(form, formdata)


class ArticleForm(ConduitForm):
    """Writing or editing an article."""

    title = StringField(
        "Article title", filters=[_strip], validators=[DataRequired(), Length(max=200)]
    )
    description = StringField(
        "What's this article about?", filters=[_strip], validators=[DataRequired(), Length(max=500)]
    )
    body = TextAreaField("Write your article", filters=[_drop_nul], validators=[DataRequired()])
    tags = StringField("Enter tags", filters=[_strip], validators=[Optional(), Length(max=1000)])


class CommentForm(ConduitForm):
    """A comment on an article."""

    body = TextAreaField(
        "Write a comment…", filters=[_strip], validators=[DataRequired(), Length(max=10_000)]
    )


class SettingsForm(ConduitForm):
    """The signed-in user's profile and account."""

    image = URLField(
        "URL of profile picture",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=500),
            Regexp(f"^{IMAGE_URL_PATTERN}$", message="Enter an http:// or https:// address."),
        ],
    )
    username = StringField(
        "Username",
        filters=[_strip],
        validators=[
            DataRequired(),
            Regexp(f"^{USERNAME_PATTERN}$", message=USERNAME_RULE),
        ],
    )
    bio = TextAreaField(
        "Short bio about you", filters=[_drop_nul], validators=[Optional(), Length(max=10_000)]
    )
    email = EmailField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired(),
            Length(max=320),
            Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter an email address."),
        ],
    )
    password = PasswordField(
        "New password (leave empty to keep yours)", filters=[_drop_nul], validators=[Optional()]
    )
