"""Paginated lists: ``?page=&per_page=`` with a cap, an envelope and ``Link`` headers.

The response is an envelope, because a client then needs nothing but the
body (some HTTP clients and proxies hide headers), plus a ``Link`` header
(RFC 8288) for clients that follow links::

    GET /api/notes?page=2&per_page=20

    200 OK
    Link: </api/notes?page=1&per_page=20>; rel="first", </api/notes?page=1&per_page=20>; rel="prev",
          </api/notes?page=3&per_page=20>; rel="next", </api/notes?page=5&per_page=20>; rel="last"
    X-Total-Count: 97

    {"items": [...], "page": 2, "per_page": 20, "total": 97, "pages": 5}

``page`` starts at 1; a page past the end is an empty list, not an error.
``per_page`` defaults to ``FLASKSTACK_API_PER_PAGE`` and is capped at
``FLASKSTACK_API_MAX_PER_PAGE`` (the envelope says what was used, however
many digits were sent). ``page`` is at most :data:`MAX_PAGE` (2147483647).
Anything else is a 422 naming the parameter and saying what is wrong: not a
whole number, below 1, or (``page``) above :data:`MAX_PAGE`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing as t
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app, request
from flask_restful.utils import unpack

from flaskstack._ids import INT32_MAX
from flaskstack.database import _first_read, db

from ._inputs import InvalidQuery, schema_class
from ._meta import describe
from ._output import Output, _warn_fields, marshal_fields

__all__ = ["MAX_PAGE", "Page", "page_args", "paginate", "paginated"]

MAX_PAGE = INT32_MAX
"""The highest ``page`` a client may ask for: its offset fits a 64-bit integer at any page size."""

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a list.

    :ivar items: The rows (or values) on this page.
    :ivar page: The page number, from 1.
    :ivar per_page: The page size in effect (after the cap).
    :ivar total: How many items all pages hold together.
    """

    items: list[t.Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))

    def envelope(self, items: list[t.Any] | None = None) -> dict[str, t.Any]:
        """The response body: ``items`` (as given, or this page's) and the counts."""
        return {
            "items": self.items if items is None else items,
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "pages": self.pages,
        }

    def headers(self) -> dict[str, str]:
        """``Link`` (first, prev, next, last) and ``X-Total-Count`` for this page."""
        links = [("first", 1)]
        if self.page > 1:
            links.append(("prev", min(self.page - 1, self.pages)))
        if self.page < self.pages:
            links.append(("next", self.page + 1))
        links.append(("last", self.pages))
        base = _list_url()
        return {
            "Link": ", ".join(
                f'<{base}page={number}&per_page={self.per_page}>; rel="{rel}"'
                for rel, number in links
            ),
            "X-Total-Count": str(self.total),
        }


def _list_url() -> str:
    """This request's URL with its other query arguments, ready for ``page=…&per_page=…``."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "per_page")]
    query = f"{urlencode(args)}&" if args else ""
    return f"{request.script_root}{request.path}?{query}"


def page_args() -> tuple[int, int]:
    """The request's ``page`` and ``per_page``, defaulted and capped.

    :raises InvalidQuery: (422) if either is not a whole number of at least 1,
        or ``page`` is above :data:`MAX_PAGE`.
    """
    config = current_app.config
    errors: dict[str, list[str]] = {}
    values = {"page": 1, "per_page": config["FLASKSTACK_API_PER_PAGE"]}
    for name in values:
        given = request.args.getlist(name)
        if not given:
            continue
        text = given[0].strip().removeprefix("+")
        digits = text.lstrip("0")
        if len(given) > 1:
            errors[name] = ["Give this parameter once."]
        elif not text.isascii() or not text.isdigit():
            errors[name] = ["Must be a whole number of at least 1."]
        elif not digits:
            errors[name] = ["Must be at least 1."]
        elif name == "page" and (len(digits) > len(str(MAX_PAGE)) or int(digits) > MAX_PAGE):
            errors[name] = [f"Must be at most {MAX_PAGE}."]
        else:
            # per_page is capped below, so a huge one need not be read whole.
            values[name] = int(digits) if len(digits) <= 18 else 10**18
    if errors:
        raise InvalidQuery(errors)
    return values["page"], min(values["per_page"], config["FLASKSTACK_API_MAX_PER_PAGE"])


def paginate(
    select: sa.Select[t.Any] | sa.CompoundSelect[t.Any],
    *,
    page: int | None = None,
    per_page: int | None = None,
) -> Page:
    """Run one page of ``select``, with a count of all its rows, on ``flaskstack.db``.

    The page and the count are one statement: the count is a subquery the
    database runs once, so both come from the same snapshot and cost one
    round trip. A page past the last row holds no count, and a second
    statement counts. A compound select (``sa.union(...)``) is counted by a
    second statement, except on a page shorter than ``per_page``.

    ``page`` and ``per_page`` default to the request's (:func:`page_args`).
    Give ``select`` an ``order_by``: without one the database may return
    rows in any order, and pages overlap.
    """
    if page is None or per_page is None:
        asked_page, asked_per_page = page_args()
        page = page or asked_page
        per_page = per_page or asked_per_page
    offset = (page - 1) * per_page
    count = sa.select(sa.func.count()).select_from(select.order_by(None).subquery())
    total: int | None = None
    if isinstance(select, sa.Select):
        rows = db.session.execute(
            select.add_columns(count.correlate(None).scalar_subquery())
            .limit(per_page)
            .offset(offset)
        ).all()
        items = [row[0] for row in rows]
        if rows:
            total = int(rows[0][-1])
    else:  # a UNION takes no column of its own: a full page is counted by a second statement
        items = list(db.session.scalars(select.limit(per_page).offset(offset)))
        if 0 < len(items) < per_page:
            total = offset + len(items)
    if total is None:
        total = 0 if page == 1 and not items else db.session.execute(count).scalar_one()
    return Page(items=items, page=page, per_page=per_page, total=total)


def paginated(schema: Output | None = None) -> t.Callable[[F], F]:
    """Paginate what the method returns: a ``select``, or a :class:`Page` it built itself.

    Each item is written with ``schema`` (a :class:`~flaskstack.rest.Schema`
    class or instance) when given; a dict of Flask-RESTful output fields is
    deprecated (it warns). The response is the envelope of :class:`Page`
    with its ``Link`` and ``X-Total-Count`` headers::

        @rest.paginated(Note)
        def get(self):
            return db.select(Note).order_by(Note.id)

    On PostgreSQL with psycopg 3, a returned ``select`` that is the
    request's first statement runs outside a transaction, as the sign-in
    read does: one statement instead of ``BEGIN``, ``SELECT`` and
    ``ROLLBACK``. Nothing changes for a view that has sent a statement or
    added an object, under a chosen isolation level, or under the test
    plugin. A view whose select must run in a transaction (its functions
    write and must be rolled back, or its ``with_for_update()`` locks must
    outlast the read) calls ``db.session.begin()`` before it returns.
    """
    fields: t.Mapping[str, t.Any] | None = None
    output: t.Any = None
    if isinstance(schema, t.Mapping):
        _warn_fields("paginated(fields)", "paginated(Schema)")
        fields = output = schema
    elif schema is not None:
        output = schema_class(schema)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            number, per_page = page_args()  # refuse a bad page before doing any work
            value, code, headers = unpack(view(*args, **kwargs))
            if isinstance(value, Page):
                page = value
            else:
                # The view has returned; its select is read like flaskstack's own
                # reads: outside a transaction when it is the request's first.
                with _first_read():
                    page = paginate(value, page=number, per_page=per_page)
            if fields is not None:
                items = marshal_fields(page.items, fields)
            elif output is not None:
                items = output.dump(page.items, many=True)
            else:
                items = None
            return page.envelope(items), code, {**page.headers(), **dict(headers or {})}

        return describe(t.cast("F", wrapper), paginated=True, output=output, envelope=None)

    return decorate
