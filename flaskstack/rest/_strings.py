"""Text fields: :class:`String`, :class:`Email`, :class:`Url`, :class:`Password`.

Each states in the OpenAPI document exactly what it accepts, including what
JSON Schema has no keyword for: text no database stores (NUL) and the
whitespace ``strip`` removes before lengths, patterns and choices are
checked, written as one whole-value pattern that ECMA-262, Python and Rust
regular expressions read alike.
"""

from __future__ import annotations

import enum
import re
import typing as t

from flask import current_app, has_app_context

from flaskstack.forms import _UNSTORABLE_MESSAGE, _unstorable

from ._fields import (
    _ANY,
    _ANYTHING,
    _END,
    _KEPT,
    _SPACE,
    WHITESPACE,
    Field,
    Invalid,
    _ecma_escape,
)

__all__ = ["Email", "Password", "String", "Url"]


class String(Field):
    """A JSON string.

    :param min_length: Fewest characters (``1`` refuses an empty string).
    :param max_length: Most characters.
    :param pattern: A regular expression the whole value must match. The
        OpenAPI document carries it as written: use what ECMA-262 and
        Python read alike (``[0-9]`` rather than ``\\d``, which is Unicode
        in Python).
    :param choices: The only values accepted.
    :param strip: Remove surrounding whitespace before checking; the
        lengths, pattern and choices apply to what remains.
    :param pattern_message: What a value that does not match ``pattern`` is
        told, in words a client understands.

    Text no database can store (NUL, lone surrogates) is refused. The
    document states the NUL; lone surrogates (which only a JSON ``\\ud800``
    escape can send) it cannot, since validators working on UTF-8 text
    cannot name them.
    """

    _pattern_message: str | None = None

    def __init__(
        self,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        choices: t.Sequence[str] | None = None,
        strip: bool = False,
        pattern_message: str | None = None,
        **options: t.Any,
    ) -> None:
        super().__init__(**options)
        if pattern_message is not None:
            self._pattern_message = pattern_message
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.choices = tuple(choices) if choices is not None else None
        self.strip = strip

    def _lengths(self) -> tuple[int | None, int | None]:
        return self.min_length, self.max_length

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str):
            raise Invalid("Must be a string.")
        if _unstorable(value):
            raise Invalid(_UNSTORABLE_MESSAGE)
        if self.strip:
            value = value.strip()
        low, high = self._lengths()
        if low is not None and len(value) < low:
            raise Invalid(self._too_short(low))
        if high is not None and len(value) > high:
            raise Invalid(self._too_long(high))
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise Invalid(
                self._pattern_message or f"Must match the pattern {self.pattern.pattern!r}."
            )
        if self.choices is not None and value not in self.choices:
            raise Invalid(f"Must be one of: {', '.join(map(repr, self.choices))}.")
        return value

    def _too_short(self, low: int) -> str:
        return "Must not be empty." if low == 1 else f"Must be at least {low} characters long."

    def _too_long(self, high: int) -> str:
        return f"Must be at most {high} characters long."

    def format(self, value: t.Any) -> t.Any:
        if isinstance(value, enum.Enum):
            value = value.value
        return value if isinstance(value, str) else str(value)

    def _constraints(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        low, high = self._lengths()
        user = self.pattern.pattern if self.pattern is not None else None
        if not self.strip:
            if low is not None:
                out["minLength"] = low
            if high is not None:
                out["maxLength"] = high
            if self.choices is not None:
                out["enum"] = list(self.choices)
            if user is None and self.choices is None:
                out["pattern"] = rf"^{_ANY}*{_END}"
            elif user is not None:
                out["pattern"] = rf"^(?={_ANY}*{_END})(?:{user}){_END}"
            return out
        out["pattern"] = self._stripped_pattern(low or 0, high, user)
        if low:
            out["minLength"] = low  # what remains is never longer than what was sent
        return out

    def _stripped_pattern(self, low: int, high: int | None, user: str | None) -> str:
        """What ``strip`` and the checks of what remains accept, as one whole-value pattern."""
        # What remains starts and ends with a kept character; its length is
        # one more than the characters between its first and its last.
        if high is not None and high < max(low, 1):
            return rf"^(?={_ANY}*{_END}){_SPACE}*{_END}" if low == 0 else "^(?!)"
        between = f"{{{max(low, 1) - 1},{'' if high is None else high - 1}}}"
        tail = f"{_KEPT}{_SPACE}*{_END}"
        core = f"(?={_KEPT})"
        if user is None and self.choices is None:
            core += rf"[\s\S]{between}{_KEPT}"
        else:
            core += rf"(?=[\s\S]{between}{tail})"
            if self.choices is not None:
                choices = "|".join(_ecma_escape(choice) for choice in self.choices if choice)
                core += f"(?=(?:{choices})(?<={_KEPT}){_SPACE}*{_END})"
            body = user if user is not None else _ANYTHING
            core += rf"(?:{body})(?<={_KEPT})"
        empty_ok = (
            low == 0
            and (high is None or high >= 0)
            and (self.pattern is None or self.pattern.fullmatch("") is not None)
            and (self.choices is None or "" in self.choices)
        )
        optional = "?" if empty_ok else ""
        return rf"^(?={_ANY}*{_END}){_SPACE}*(?:{core}){optional}{_SPACE}*{_END}"

    def _dump_constraints(self) -> dict[str, t.Any]:
        return {}


_EMAIL_PART = f"[^@{WHITESPACE}]+"


class Email(String):
    """An e-mail address: one ``@``, no whitespace, a dot in the domain. Surrounding spaces go.

    The document states the pattern validation applies, and no ``format``:
    ``format: email`` means RFC 5321 addresses, which validators check more
    strictly than this field does, so they would expect refusals it does not
    give. Mail sent to an address is what proves it.
    """

    _pattern_message = "Must be an e-mail address such as name@example.com."

    def __init__(self, *, max_length: int = 254, **options: t.Any) -> None:
        options.setdefault("strip", True)
        super().__init__(
            max_length=max_length,
            pattern=rf"{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}",
            **options,
        )


def _url_pattern(schemes: t.Sequence[str]) -> str:
    """Absolute URLs of ``schemes`` that RFC 3986 accepts (no IP-literal hosts), as a pattern."""
    names = "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else _ecma_escape(c) for c in scheme)
        for scheme in schemes
    )
    unreserved_sub = r"A-Za-z0-9\-._~!$&'()*+,;="
    pct = "%[0-9A-Fa-f]{2}"
    pchar = f"(?:[{unreserved_sub}:@]|{pct})"
    userinfo = f"(?:(?:[{unreserved_sub}:]|{pct})*@)?"
    host = f"(?:[{unreserved_sub}]|{pct})+"
    tail = f"(?:{pchar}|[/?])*"
    return f"(?:{names})://{userinfo}{host}(?::[0-9]*)?(?:/{pchar}*)*(?:\\?{tail})?(?:#{tail})?"


class Url(String):
    """An absolute URL (``https://example.com/a.png``): ``format: uri`` in the document.

    The value must be a URL as RFC 3986 writes it (non-ASCII characters
    percent-encoded) with one of ``schemes``; it is not stripped, since
    a URL with spaces around it is not one.

    :param schemes: The schemes accepted.
    :param blank: Accept an empty string as well ("no URL").
    """

    _pattern_message = "Must be an http:// or https:// URL, such as https://example.com/a.png."

    def __init__(
        self,
        *,
        schemes: t.Sequence[str] = ("http", "https"),
        blank: bool = False,
        max_length: int | None = 2000,
        **options: t.Any,
    ) -> None:
        if options.get("strip"):
            raise TypeError("a Url is not stripped: an address with spaces around it is not one")
        pattern = _url_pattern(schemes)
        if tuple(schemes) != ("http", "https"):
            names = " or ".join(f"{scheme}://" for scheme in schemes)
            self._pattern_message = f"Must be a {names} URL."
        self.blank = blank
        super().__init__(
            max_length=max_length, pattern=f"(?:{pattern})?" if blank else pattern, **options
        )

    def _constraints(self) -> dict[str, t.Any]:
        out = super()._constraints()
        if not self.blank:
            return {**out, "format": "uri"}
        # An empty string is no URI: say which of the two a value is.
        return {**out, "anyOf": [{"const": ""}, {"format": "uri"}]}


class Password(String):
    """A password: the lengths of ``FLASKSTACK_PASSWORD_MIN_LENGTH`` and ``..._MAX_LENGTH``.

    Not stripped; write-only in the document, which states the app's
    lengths. Use it where a password is chosen (sign-up, a change); a login
    form takes a plain :class:`String`, so passwords set under an older
    policy still work.
    """

    def __init__(self, **options: t.Any) -> None:
        options.setdefault("load_only", True)
        super().__init__(**options)

    def _lengths(self) -> tuple[int | None, int | None]:
        if not has_app_context():
            return None, None
        config = current_app.config
        return config["FLASKSTACK_PASSWORD_MIN_LENGTH"], config["FLASKSTACK_PASSWORD_MAX_LENGTH"]

    # The same words as flaskstack.auth's password policy.
    def _too_short(self, low: int) -> str:
        return f"Use at least {low} characters."

    def _too_long(self, high: int) -> str:
        return f"Use at most {high} characters."

    def _constraints(self) -> dict[str, t.Any]:
        return {**super()._constraints(), "format": "password"}
