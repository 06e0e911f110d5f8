"""The admin in Chromium: an administrator manages articles and finds each change in the audit log.

One app (PostgreSQL, sessions in the shared Redis, ``FLASKSTACK_ROLES`` and
``FLASKSTACK_ADMIN`` on, flaskstack's default Content-Security-Policy) is
served by a Werkzeug server on loopback. The administrator opens the admin,
is sent to the sign-in page, signs in, creates two articles, edits one,
searches for it, deletes it with its row's button and the other with the
bulk action, then finds every change in the audit log by the request id the
server returned for it. No Content-Security-Policy violation may be reported
on the way: Flask-Admin's pages run under the app's policy unchanged.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from admin_support import WAIT_MS, admin_settings, served_admin, watched_page
from chromium import chromium
from playwright.sync_api import expect
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
import flaskstack.admin
from flaskstack import db

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from playwright.sync_api import Page, Response

EMAIL = "ada@example.com"


class Article(db.Model):  # type: ignore[misc,name-defined]
    """An article, as an app's model."""

    __tablename__ = "admin_browser_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")


flaskstack.admin.register(Article, endpoint="articles", name="Articles")


@pytest.fixture
def site(make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]) -> Iterator[str]:
    """The app with the admin on, served on loopback; its origin."""
    app = make_app(admin_settings(postgres_url, namespace()), profile="testing")
    permissions = flaskstack.admin.permissions_for("articles")
    with served_admin(app, EMAIL, [Article], permissions) as origin:
        yield origin


def create_article(page: Page, title: str, body: str) -> None:
    page.get_by_role("link", name="Create", exact=True).click()
    page.locator("#title").fill(title)
    page.locator("#body").fill(body)
    page.locator("input[type=submit][value='Save']").click()
    expect(page.get_by_role("cell", name=title, exact=True)).to_be_visible(timeout=WAIT_MS)


def row_of(page: Page, title: str) -> t.Any:
    return page.locator("tr", has=page.get_by_role("cell", name=title, exact=True))


# Chromium drops a static file's download when a click navigates away mid-way; the test's
# in-process Werkzeug server thread then leaves that file to the garbage collector, whose
# ResourceWarning lands in this test. It concerns the test server's threads, not a page.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)
def test_an_admin_manages_articles_and_finds_each_change_in_the_audit_log(site: str) -> None:
    with chromium() as browser:
        watched = watched_page(browser)
        page = watched.page
        changes: list[tuple[str, str]] = []

        def note(response: Response) -> None:
            if response.request.method == "POST" and "/admin/articles/" in response.url:
                changes.append((response.url, response.headers["x-request-id"]))

        page.on("response", note)

        # Not signed in: the admin sends the browser to the sign-in page, and back.
        page.goto(f"{site}/admin/")
        expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible(
            timeout=WAIT_MS
        )
        watched.sign_in(site, EMAIL)

        page.get_by_role("link", name="Articles").first.click()
        create_article(page, "First steps", "Hello.")
        create_article(page, "Second thoughts", "Again.")

        row_of(page, "First steps").get_by_title("Edit Record").click()
        page.wait_for_load_state()  # the page's scripts ran, as before a person's click
        page.get_by_role("link", name="Edit", exact=True).click()  # the current tab: nothing
        page.locator("#title").fill("First steps, edited")
        page.locator("input[type=submit][value='Save']").click()
        expect(page.get_by_role("cell", name="First steps, edited", exact=True)).to_be_visible(
            timeout=WAIT_MS
        )

        page.locator("input[name=search]").fill("edited")
        page.locator("input[name=search]").press("Enter")
        expect(page.get_by_role("cell", name="First steps, edited", exact=True)).to_be_visible(
            timeout=WAIT_MS
        )
        expect(page.get_by_role("cell", name="Second thoughts", exact=True)).to_have_count(
            0, timeout=WAIT_MS
        )

        row_of(page, "First steps, edited").get_by_title("Delete Record").click()
        expect(page.get_by_role("cell", name="First steps, edited", exact=True)).to_have_count(
            0, timeout=WAIT_MS
        )

        page.goto(f"{site}/admin/articles/")
        row_of(page, "Second thoughts").locator("input.action-checkbox").check()
        page.get_by_role("button", name="With selected").or_(
            page.get_by_role("link", name="With selected")
        ).click()
        page.locator("[data-flaskstack-action='delete']").click()
        expect(page.get_by_text("There are no items in the table.")).to_be_visible(timeout=WAIT_MS)

        # Two creations, one edit, two deletions: each request's id finds its entry.
        kinds = [urlsplit(url).path.removeprefix("/admin/articles/") for url, _ in changes]
        assert kinds == ["new/", "new/", "edit/", "delete/", "action/"], changes
        expected = ["create", "create", "change", "delete", "delete"]
        for (_url, request_id), action in zip(changes, expected, strict=True):
            page.goto(f"{site}/admin/audit/?search={request_id}")
            row = page.locator("table.model-list tbody tr")
            expect(row).to_have_count(1, timeout=WAIT_MS)
            expect(row).to_contain_text(action, timeout=WAIT_MS)
            expect(row).to_contain_text("Article", timeout=WAIT_MS)
            expect(row).to_contain_text(EMAIL, timeout=WAIT_MS)
            expect(row).to_contain_text(request_id, timeout=WAIT_MS)
        page.goto(f"{site}/admin/audit/?search={changes[2][1]}")
        expect(page.locator("table.model-list tbody tr")).to_contain_text(
            "'First steps' → 'First steps, edited'", timeout=WAIT_MS
        )

        watched.assert_clean()
        watched.context.close()
