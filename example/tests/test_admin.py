"""Conduit's admin through the plugin's ``admin_client``: its pages, and a change audited."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from example.models import Article
from example.tests.helpers import sign_up, write_article

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

    from flaskstack.testing import CsrfToken


def test_the_admin_lists_conduits_models_users_roles_and_the_audit_log(
    admin_client: FlaskClient, client: FlaskClient
) -> None:
    write_article(client, sign_up(client, "ada"), title="Dragons")
    for path in ("/admin/", "/admin/users/", "/admin/roles/", "/admin/audit/", "/admin/tag/"):
        assert admin_client.get(path).status_code == 200, path
    articles = admin_client.get("/admin/article/?search=Dragons")
    assert "Dragons" in articles.get_data(as_text=True)
    assert admin_client.get("/admin/comment/").status_code == 200


def test_an_article_edited_in_the_admin_is_in_the_audit_log(
    admin_client: FlaskClient, client: FlaskClient, csrf_token: CsrfToken, db_session: Session
) -> None:
    write_article(client, sign_up(client, "ada"), title="Dragons")
    article = db_session.scalars(sa.select(Article)).one()
    tags = [str(tag.id) for tag in article.tags]
    response = admin_client.post(
        f"/admin/article/edit/?id={article.id}",
        data={
            "csrf_token": csrf_token(admin_client),
            "title": "Wyverns",
            "slug": article.slug,
            "description": article.description,
            "body": article.body,
            "author": str(article.author_id),
            "tags": tags,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    log = admin_client.get(f"/admin/audit/?search={response.headers['X-Request-ID']}")
    text = log.get_data(as_text=True)
    assert "&#39;Dragons&#39; → &#39;Wyverns&#39;" in text


def test_a_user_without_the_admin_permission_is_refused(
    client: FlaskClient, login: t.Any, make_user: t.Any
) -> None:
    login(client, make_user())
    assert client.get("/admin/article/").status_code == 403
