"""``flask example seed``: demo data, added once however often it runs."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from example.cli import DEMO_ARTICLES, DEMO_PASSWORD, DEMO_USERS
from example.models import Article, Comment, User, favorites, follows

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient, FlaskCliRunner
    from sqlalchemy.orm import Session


def counts(session: Session) -> dict[str, int]:
    def count(what: t.Any) -> int:
        return session.execute(sa.select(sa.func.count()).select_from(what)).scalar_one()

    return {
        "users": count(User),
        "articles": count(Article),
        "comments": count(Comment),
        "follows": count(follows),
        "favorites": count(favorites),
    }


def test_seed_twice_adds_the_demo_data_once(runner: FlaskCliRunner, db_session: Session) -> None:
    first = runner.invoke(args=["example", "seed"])
    after_first = counts(db_session)
    second = runner.invoke(args=["example", "seed"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "4 added now, 3 comment(s) added now" in first.output
    assert "0 added now, 0 comment(s) added now" in second.output
    assert after_first == {
        "users": len(DEMO_USERS),
        "articles": len(DEMO_ARTICLES),
        "comments": 3,
        "follows": 3,
        "favorites": 5,
    }
    assert counts(db_session) == after_first


def test_seeded_site_lists_the_articles_and_lets_a_demo_user_sign_in(
    runner: FlaskCliRunner, client: FlaskClient
) -> None:
    runner.invoke(args=["example", "seed"])

    home = client.get("/").get_data(as_text=True)
    tags = client.get("/api/tags").get_json()["tags"]
    login = client.post(
        "/api/users/login",
        json={"user": {"email": DEMO_USERS[0].email, "password": DEMO_PASSWORD}},
    )

    for demo in DEMO_ARTICLES:
        assert demo.title in home
    assert tags[0] == "flaskstack"  # on two articles
    assert login.status_code == 200
    newest = client.get("/api/articles?limit=1").get_json()["articles"][0]
    assert (newest["slug"], newest["favoritesCount"]) == ("welcome-to-conduit", 2)
