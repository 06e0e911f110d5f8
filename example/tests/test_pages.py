"""Conduit's pages: signing up, writing, reading, commenting; CSRF on every form; the cache."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from example.models import Article, Comment, User
from example.tests.helpers import PASSWORD, auth, form_token, sign_up, write_article

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

    from flaskstack.testing import CsrfToken, Login, MakeUser


def sign_up_in_browser(client: FlaskClient, email: str) -> None:
    page = client.get("/auth/register")
    response = client.post(
        "/auth/register",
        data={
            "csrf_token": form_token(page),
            "email": email,
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def publish(client: FlaskClient, title: str, tags: str = "") -> str:
    editor = client.get("/editor")
    response = client.post(
        "/editor",
        data={
            "csrf_token": form_token(editor),
            "title": title,
            "description": f"About {title}",
            "body": "First paragraph.\n\nSecond <paragraph>.",
            "tags": tags,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    location: str = response.headers["Location"]
    return location


def test_a_newcomer_signs_up_writes_an_article_and_sees_it_listed(
    client: FlaskClient, db_session: Session
) -> None:
    front = client.get("/")
    assert front.status_code == 200
    assert "Sign up" in front.get_data(as_text=True)

    sign_up_in_browser(client, "New.Comer@example.com")
    location = publish(client, "My first article", "intro, hello hello")
    home = client.get("/").get_data(as_text=True)
    page = client.get(location).get_data(as_text=True)

    user = db_session.execute(
        sa.select(User).where(User.email == "new.comer@example.com")
    ).scalar_one()
    assert user.username == "new.comer"  # made from the email; changeable in Settings
    assert location == "/article/my-first-article"
    assert "My first article" in home
    assert 'href="/profile/new.comer"' in home  # the navigation shows who is signed in
    assert "<p>First paragraph.</p>" in page
    assert "Second &lt;paragraph&gt;." in page  # the body is text, not HTML
    article = db_session.execute(sa.select(Article)).scalar_one()
    assert article.tag_list == ["hello", "intro"]


def test_usernames_made_from_emails_are_unique(client: FlaskClient, db_session: Session) -> None:
    sign_up_in_browser(client, "sam@example.com")
    other = client.application.test_client()
    sign_up_in_browser(other, "sam@example.org")

    names = db_session.scalars(sa.select(User.username).order_by(User.id)).all()
    assert names[0] == "sam"
    assert names[1].startswith("sam")
    assert names[1] != "sam"


def test_forms_need_a_csrf_token(
    client: FlaskClient, make_user: MakeUser, login: Login, db_session: Session
) -> None:
    login(client, make_user(username="jake"))

    response = client.post(
        "/editor", data={"title": "t", "description": "d", "body": "b", "tags": ""}
    )

    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert db_session.scalar(sa.select(sa.func.count(Article.id))) == 0


def test_pages_for_signed_in_users_send_anonymous_visitors_to_sign_in(client: FlaskClient) -> None:
    for path in ("/editor", "/settings"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == f"/auth/login?next={path}"


def test_sign_in_and_out_through_flaskstack_auth_pages(
    client: FlaskClient, make_user: MakeUser
) -> None:
    make_user(email="jake@example.com", password=PASSWORD, username="jake")
    login_page = client.get("/auth/login")
    assert "Need an account?" in login_page.get_data(as_text=True)  # Conduit's template

    signed_in = client.post(
        "/auth/login",
        data={
            "csrf_token": form_token(login_page),
            "email": "jake@example.com",
            "password": PASSWORD,
        },
    )
    settings = client.get("/settings")
    signed_out = client.post("/auth/logout", data={"csrf_token": form_token(settings)})

    assert signed_in.status_code == 302
    assert settings.status_code == 200
    assert signed_out.status_code == 302
    assert client.get("/settings").status_code == 302


def test_only_the_author_edits_or_deletes(
    client: FlaskClient, make_user: MakeUser, login: Login, db_session: Session
) -> None:
    owner = client.application.test_client()
    login(owner, make_user(username="jake"))
    publish(owner, "Jake's article")
    login(client, make_user(username="finn"))
    page = client.get("/article/jake-s-article")

    assert client.get("/editor/jake-s-article").status_code == 403
    token = form_token(page)
    assert client.post(
        "/article/jake-s-article/delete", data={"csrf_token": token}
    ).status_code == (403)
    edit = owner.get("/editor/jake-s-article")
    assert 'value="Jake&#39;s article"' in edit.get_data(as_text=True)
    changed = owner.post(
        "/editor/jake-s-article",
        data={
            "csrf_token": form_token(edit),
            "title": "Renamed",
            "description": "d",
            "body": "b",
            "tags": "x",
        },
    )
    assert changed.headers["Location"] == "/article/renamed"
    deleted = owner.post("/article/renamed/delete", data={"csrf_token": form_token(edit)})
    assert deleted.status_code == 302
    assert db_session.scalar(sa.select(sa.func.count(Article.id))) == 0


def test_comments_favourites_and_follows_from_the_article_page(
    client: FlaskClient, make_user: MakeUser, login: Login, db_session: Session
) -> None:
    author = client.application.test_client()
    login(author, make_user(username="jake"))
    publish(author, "Dragons")
    login(client, make_user(username="finn"))
    token = form_token(client.get("/article/dragons"))

    commented = client.post("/article/dragons/comments", data={"csrf_token": token, "body": "Hi!"})
    empty = client.post("/article/dragons/comments", data={"csrf_token": token, "body": " "})
    favourited = client.post(
        "/article/dragons/favorite", data={"csrf_token": token, "next": "//evil.example/"}
    )
    followed = client.post(
        "/profile/jake/follow", data={"csrf_token": token, "next": "/?feed=yours"}
    )
    page = client.get("/article/dragons").get_data(as_text=True)

    assert commented.headers["Location"] == "/article/dragons#comments"
    assert favourited.headers["Location"] == "/article/dragons"  # not to another site
    assert followed.headers["Location"] == "/?feed=yours"
    assert empty.status_code == 200
    assert "This field is required." in empty.get_data(as_text=True)
    assert "Hi!" in page
    assert "Unfavorite Article" in page
    assert "Unfollow jake" in page
    comment = db_session.execute(sa.select(Comment)).scalar_one()
    other = author.post(
        f"/article/dragons/comments/{comment.id}/delete",
        data={"csrf_token": form_token(author.get("/article/dragons"))},
    )
    assert other.status_code == 403
    own = client.post(f"/article/dragons/comments/{comment.id}/delete", data={"csrf_token": token})
    assert own.status_code == 302
    assert db_session.scalar(sa.select(sa.func.count(Comment.id))) == 0


def test_settings_change_the_username_and_refuse_a_taken_one(
    client: FlaskClient, make_user: MakeUser, login: Login
) -> None:
    make_user(username="finn")
    login(client, make_user(email="jake@example.com", username="jake"))
    form = client.get("/settings")
    fields = {
        "csrf_token": form_token(form),
        "image": "",
        "bio": "Skater",
        "email": "jake@example.com",
        "password": "",
    }

    taken = client.post("/settings", data={**fields, "username": "FINN"})
    changed = client.post("/settings", data={**fields, "username": "jake2"})

    assert taken.status_code == 200
    assert "This username is taken." in taken.get_data(as_text=True)
    assert changed.headers["Location"] == "/profile/jake2"
    assert "Skater" in client.get("/profile/jake2").get_data(as_text=True)


def test_a_new_password_keeps_this_browser_signed_in(
    client: FlaskClient, make_user: MakeUser, login: Login
) -> None:
    login(client, make_user(email="jake@example.com", username="jake"))
    form = client.get("/settings")

    response = client.post(
        "/settings",
        data={
            "csrf_token": form_token(form),
            "image": "",
            "bio": "",
            "username": "jake",
            "email": "jake@example.com",
            "password": "a brand new password",
        },
    )

    assert response.status_code == 302
    assert client.get("/settings").status_code == 200
    login_api = client.post(
        "/api/users/login",
        json={"user": {"email": "jake@example.com", "password": "a brand new password"}},
    )
    assert login_api.status_code == 200


def test_home_feeds_tags_and_pages(client: FlaskClient, make_user: MakeUser, login: Login) -> None:
    jake = sign_up(client, "jake")
    for number in range(12):
        write_article(client, jake, f"Article {number}", ["dragons"] if number % 2 else [])
    login(client, make_user(username="finn"))

    first = client.get("/").get_data(as_text=True)
    second = client.get("/?page=2").get_data(as_text=True)
    tagged = client.get("/?tag=dragons").get_data(as_text=True)
    yours = client.get("/?feed=yours").get_data(as_text=True)

    assert "Article 11" in first
    assert "Article 0<" not in first
    assert "Article 0<" in second
    assert "Article 1<" in tagged
    assert "Article 2<" not in tagged
    assert 'href="/?page=2"' in first
    assert "Popular Tags" in first
    assert 'href="/?tag=dragons"' in first
    assert "Follow some writers" in yours


def test_article_pages_are_cached_for_anonymous_visitors_until_a_write(
    client: FlaskClient, db_session: Session
) -> None:
    jake = sign_up(client, "jake")
    slug = write_article(client, jake, "Cached")["slug"]
    visitor = client.application.test_client()
    assert "Very carefully." in visitor.get(f"/article/{slug}").get_data(as_text=True)

    db_session.execute(sa.update(Article).values(body="Changed directly"))
    db_session.commit()
    stale = visitor.get(f"/article/{slug}").get_data(as_text=True)
    client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "Nice"}}, headers=auth(jake)
    )
    fresh = visitor.get(f"/article/{slug}").get_data(as_text=True)

    assert "Very carefully." in stale
    assert "Changed directly" in fresh
    assert "Nice" in fresh
    app = client.application
    cookie = app.session_interface.get_cookie_name(app)
    assert visitor.get_cookie(cookie) is None  # reading never started a session
    assert client.get_cookie(cookie) is None  # the API client only used its token


def test_a_username_change_refreshes_cached_pages_that_show_it(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    slug = write_article(client, jake, "Mine")["slug"]
    visitor = client.application.test_client()
    assert "/profile/jake" in visitor.get(f"/article/{slug}").get_data(as_text=True)

    client.put("/api/user", json={"user": {"username": "jacob"}}, headers=auth(jake))

    page = visitor.get(f"/article/{slug}").get_data(as_text=True)
    assert "/profile/jacob" in page
    assert "/profile/jake" not in page


def test_profile_pages_list_written_and_favourited_articles(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    finn = sign_up(client, "finn")
    write_article(client, jake, "Written by Jake")
    slug = write_article(client, finn, "Written by Finn")["slug"]
    client.post(f"/api/articles/{slug}/favorite", headers=auth(jake))

    written = client.get("/profile/jake").get_data(as_text=True)
    favourited = client.get("/profile/jake?favorites=1").get_data(as_text=True)

    assert "Written by Jake" in written
    assert "Written by Finn" not in written
    assert "Written by Finn" in favourited
    assert "Written by Jake" not in favourited


def test_unknown_pages_are_404(client: FlaskClient) -> None:
    assert client.get("/article/nope").status_code == 404
    assert client.get("/profile/nobody").status_code == 404
    assert client.get("/article/a%00b").status_code == 404
    assert client.get("/?tag=a%00b").status_code == 404


def test_a_json_body_that_is_not_an_object_is_a_400(
    client: FlaskClient, make_user: MakeUser, login: Login, csrf_token: CsrfToken
) -> None:
    slug = write_article(client.application.test_client(), sign_up(client, "finn"))["slug"]
    login(client, make_user(username="jake"))
    headers = {"X-CSRFToken": csrf_token(client)}

    for path in ("/editor", "/settings", f"/article/{slug}/comments"):
        for body in (False, [1]):
            assert client.post(path, json=body, headers=headers).status_code == 400, (path, body)


def test_nul_characters_in_forms_are_dropped(
    client: FlaskClient, make_user: MakeUser, login: Login, db_session: Session
) -> None:
    login(client, make_user(username="jake"))
    editor = client.get("/editor")

    response = client.post(
        "/editor",
        data={
            "csrf_token": form_token(editor),
            "title": "Nu\x00ll",
            "description": "d\x00",
            "body": "b\x00b",
            "tags": "x\x00y",
        },
    )

    assert response.headers["Location"] == "/article/null"
    article = db_session.execute(sa.select(Article)).scalar_one()
    assert (article.title, article.description, article.body) == ("Null", "d", "bb")
    assert article.tag_list == ["xy"]
