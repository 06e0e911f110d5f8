"""Flask-Admin's richer widgets in Chromium, under the app's Content-Security-Policy.

Beyond the list, form and bulk action of ``test_admin.py``, an administrator
uses the widgets Flask-Admin adds when a view asks for them or a column's
type does: the date-time picker of a date column's filter (a default
filter), a list column edited in place, inline forms for a related model
(``inline_models``) and the create and edit modals. Each does its work, and
no Content-Security-Policy violation is reported on the way.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

import pytest
import sqlalchemy as sa
from admin_support import WAIT_MS, admin_settings, served_admin, watched_page
from chromium import chromium
from playwright.sync_api import expect
from sqlalchemy.orm import Mapped, mapped_column, relationship

import flaskstack
import flaskstack.admin
from flaskstack import db

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory

EMAIL = "grace@example.com"


class Shelf(db.Model):  # type: ignore[misc,name-defined]
    """A model with a date-time column (a default filter) and related rows."""

    __tablename__ = "admin_widget_shelves"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    opened: Mapped[dt.datetime] = mapped_column(default=lambda: dt.datetime(2026, 1, 5, 9, 30))
    books: Mapped[list[Book]] = relationship(back_populates="shelf", cascade="all, delete-orphan")


class Book(db.Model):  # type: ignore[misc,name-defined]
    """The related rows, edited inline on their shelf's form and in modals on their own."""

    __tablename__ = "admin_widget_books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(80))
    shelf_id: Mapped[int] = mapped_column(sa.ForeignKey("admin_widget_shelves.id"))
    shelf: Mapped[Shelf] = relationship(back_populates="books")


flaskstack.admin.register(
    Shelf, endpoint="shelves", inline_models=(Book,), column_editable_list=("name",)
)
flaskstack.admin.register(
    Book, endpoint="books", create_modal=True, edit_modal=True, details_modal=True
)


@pytest.fixture
def site(make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]) -> Iterator[str]:
    """The app with the admin on, served on loopback, one shelf in it; its origin."""
    app = make_app(admin_settings(postgres_url, namespace()), profile="testing")
    with app.app_context():
        db.metadata.create_all(bind=db.engine, tables=[Shelf.__table__, Book.__table__])
        db.session.add(Shelf(name="Poetry", opened=dt.datetime(2026, 1, 5, 9, 30)))
        db.session.commit()
    permissions = [
        *flaskstack.admin.permissions_for("shelves"),
        *flaskstack.admin.permissions_for("books"),
    ]
    with served_admin(app, EMAIL, [Shelf, Book], permissions) as origin:
        yield origin


# Chromium drops a static file's download when a click navigates away mid-way; the test's
# in-process Werkzeug server thread then leaves that file to the garbage collector, whose
# ResourceWarning lands in this test. It concerns the test server's threads, not a page.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)
def test_the_admins_widgets_work_under_the_apps_policy(site: str) -> None:
    with chromium() as browser:
        watched = watched_page(browser)
        page = watched.page
        watched.sign_in(site, EMAIL)

        # A date-time column's filter: its picker opens and fills the value; the filter applies.
        page.goto(f"{site}/admin/shelves/")
        page.get_by_role("link", name="Add Filter").click()
        page.locator("a.filter", has_text="Opened").click()
        value = page.locator("input[name^=flt]").first
        value.click()
        picker = page.locator(".daterangepicker").first
        expect(picker).to_be_visible(timeout=WAIT_MS)
        picker.locator("button.applyBtn").click()
        expect(value).not_to_have_value("", timeout=WAIT_MS)
        value.fill("2026-01-05 09:30:00")
        page.locator("#filter_form").get_by_role("button", name="Apply").click()
        expect(page).to_have_url(re.compile(r"flt\d*_"), timeout=WAIT_MS)
        expect(page.get_by_role("link", name="Poetry", exact=True)).to_be_visible(timeout=WAIT_MS)

        # A column edited in place, saved with the page's CSRF token.
        page.goto(f"{site}/admin/shelves/")
        page.get_by_role("link", name="Poetry", exact=True).click()
        page.locator(".editable-input input").fill("Poems")
        page.locator("button.editable-submit").click()
        expect(page.get_by_role("link", name="Poems", exact=True)).to_be_visible(timeout=WAIT_MS)
        page.reload()
        expect(page.get_by_role("link", name="Poems", exact=True)).to_be_visible(timeout=WAIT_MS)

        # Inline forms: "Add Books" adds a form for a book, saved with its new shelf.
        page.goto(f"{site}/admin/shelves/new/")
        page.locator("#name").fill("Novels")
        page.get_by_role("button", name="Add Books").click()
        page.locator("input[name='books-0-title']").fill("Middlemarch")
        page.get_by_role("button", name="Add Books").click()
        page.locator("input[name='books-1-title']").fill("Persuasion")
        page.locator("input[type=submit][value='Save']").click()
        expect(page.get_by_role("link", name="Novels", exact=True)).to_be_visible(timeout=WAIT_MS)

        # The create and edit modals: their fields are set up (select2) and they save.
        page.goto(f"{site}/admin/books/")
        expect(page.get_by_role("cell", name="Middlemarch", exact=True)).to_be_visible(
            timeout=WAIT_MS
        )
        expect(page.get_by_role("cell", name="Persuasion", exact=True)).to_be_visible(
            timeout=WAIT_MS
        )
        page.get_by_role("link", name="Create", exact=True).click()
        modal = page.locator(".modal-content")
        expect(modal.locator(".select2-container").first).to_be_visible(timeout=WAIT_MS)
        modal.locator("#title").fill("Emma")
        modal.locator("input[type=submit][value='Save']").click()
        expect(page.get_by_role("cell", name="Emma", exact=True)).to_be_visible(timeout=WAIT_MS)
        page.wait_for_load_state()  # the page's scripts ran, as before a person's click
        row = page.locator("tr", has=page.get_by_role("cell", name="Emma", exact=True))
        row.get_by_title("Edit Record").click()
        expect(modal.locator(".select2-container").first).to_be_visible(timeout=WAIT_MS)
        modal.locator("#title").fill("Emma, revised")
        modal.locator("input[type=submit][value='Save']").click()
        expect(page.get_by_role("cell", name="Emma, revised", exact=True)).to_be_visible(
            timeout=WAIT_MS
        )

        watched.assert_clean()
        watched.context.close()
