"""The Conduit REST API: what the RealWorld spec promises, and how flaskstack keeps it safe."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa

from example.models import USERNAME_RULE, Article, User
from example.tests.helpers import PASSWORD, TIMESTAMP, auth, sign_up, write_article

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

    from flaskstack.testing import ApiClientFactory, CsrfToken, Login, MakeUser


# -- users and authentication ----------------------------------------------------------


def test_sign_up_answers_the_user_with_a_working_token(
    client: FlaskClient, db_session: Session
) -> None:
    response = client.post(
        "/api/users",
        json={"user": {"username": "jake", "email": "Jake@Example.com", "password": PASSWORD}},
    )

    assert response.status_code == 201
    user = response.get_json()["user"]
    assert user == {
        "email": "jake@example.com",
        "token": user["token"],
        "username": "jake",
        "bio": "",
        "image": "",
    }
    stored = db_session.execute(sa.select(User).where(User.username == "jake")).scalar_one()
    assert stored.email == "jake@example.com"
    assert stored.password_hash != PASSWORD
    for scheme in ("Token", "Bearer"):
        me = client.get("/api/user", headers=auth(user["token"], scheme))
        assert me.status_code == 200
        assert me.get_json()["user"]["username"] == "jake"


def test_sign_up_refuses_taken_names_and_bad_fields_with_conduit_errors(
    client: FlaskClient,
) -> None:
    sign_up(client, "jake")

    taken = client.post(
        "/api/users",
        json={"user": {"username": "JAKE", "email": "jake@example.com", "password": PASSWORD}},
    )
    missing = client.post("/api/users", json={"user": {"username": "jake"}})
    spaced = client.post(
        "/api/users",
        json={"user": {"username": "x y", "email": "xy@example.com", "password": PASSWORD}},
    )
    short = client.post(
        "/api/users",
        json={"user": {"username": "finn", "email": "finn@example.com", "password": "short"}},
    )

    assert taken.status_code == 422
    assert taken.mimetype == "application/problem+json"
    assert taken.get_json()["errors"] == {
        "email": ["has already been taken"],
        "username": ["has already been taken"],
    }
    assert missing.status_code == 422
    assert missing.get_json()["errors"] == {
        "email": ["This field is required."],
        "password": ["This field is required."],
    }
    assert spaced.status_code == 422
    assert spaced.get_json()["errors"] == {"username": [USERNAME_RULE]}
    assert short.status_code == 422
    assert short.get_json()["errors"] == {"password": ["Use at least 8 characters."]}


def test_login_issues_a_new_token_and_refuses_wrong_passwords(client: FlaskClient) -> None:
    first = sign_up(client, "jake")

    response = client.post(
        "/api/users/login", json={"user": {"email": "JAKE@example.com", "password": PASSWORD}}
    )
    wrong = client.post(
        "/api/users/login", json={"user": {"email": "jake@example.com", "password": "nope nope"}}
    )
    unknown = client.post(
        "/api/users/login", json={"user": {"email": "nobody@example.com", "password": PASSWORD}}
    )

    assert response.status_code == 200
    token = response.get_json()["user"]["token"]
    assert token != first
    assert client.get("/api/user", headers=auth(token)).status_code == 200
    for refused in (wrong, unknown):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Token")
        assert refused.get_json()["errors"] == {"email or password": ["is invalid"]}


def test_login_asks_for_the_code_of_a_user_with_two_factor_on(client: FlaskClient) -> None:
    import pyotp

    token = sign_up(client, "jake")
    started = client.post("/api/auth/two-factor/enrolment", headers=auth(token))
    assert started.status_code == 200, started.get_data(as_text=True)
    totp = pyotp.TOTP(started.get_json()["secret"])
    first = totp.now()
    confirmed = client.post(
        "/api/auth/two-factor/confirmation", json={"code": first}, headers=auth(token)
    )
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    recovery = confirmed.get_json()["recovery_codes"][0]

    credentials = {"email": "jake@example.com", "password": PASSWORD}
    without = client.post("/api/users/login", json={"user": credentials})
    wrong = client.post("/api/users/login", json={"user": {**credentials, "code": "000000"}})
    # The code that turned two-factor on is used up: the next one in time is needed.
    replayed = client.post("/api/users/login", json={"user": {**credentials, "code": first}})
    by_recovery = client.post("/api/users/login", json={"user": {**credentials, "code": recovery}})
    again = client.post("/api/users/login", json={"user": {**credentials, "code": recovery}})

    for refused in (without, wrong, replayed, again):
        assert refused.status_code == 401, refused.get_data(as_text=True)
        assert refused.headers["WWW-Authenticate"].startswith("Token")
    assert without.get_json()["errors"] == {"code": ["is required"]}
    assert wrong.get_json()["errors"] == {"code": ["is invalid"]}
    assert by_recovery.status_code == 200, by_recovery.get_data(as_text=True)
    new_token = by_recovery.get_json()["user"]["token"]
    assert client.get("/api/user", headers=auth(new_token)).status_code == 200


def test_login_is_throttled_after_repeated_failures(client: FlaskClient, app: Flask) -> None:
    sign_up(client, "jake")
    limit = app.config["FLASKSTACK_LOGIN_ACCOUNT_LIMIT"]
    wrong = {"user": {"email": "jake@example.com", "password": "wrong password"}}

    statuses = [client.post("/api/users/login", json=wrong).status_code for _ in range(limit)]
    blocked = client.post(
        "/api/users/login", json={"user": {"email": "jake@example.com", "password": PASSWORD}}
    )

    assert statuses == [401] * limit
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


def test_current_user_needs_a_valid_token(client: FlaskClient) -> None:
    assert client.get("/api/user").status_code == 401
    response = client.get("/api/user", headers=auth("fst_not-a-real-token"))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Token")


def test_update_user_changes_the_profile_and_password(client: FlaskClient) -> None:
    token = sign_up(client, "jake")
    sign_up(client, "finn")

    changed = client.put(
        "/api/user",
        json={"user": {"bio": "I like to skateboard", "image": "https://i.example/j.png"}},
        headers=auth(token),
    )
    taken = client.put("/api/user", json={"user": {"username": "Finn"}}, headers=auth(token))
    empty = client.put("/api/user", json={"user": {}}, headers=auth(token))
    script = client.put(
        "/api/user", json={"user": {"image": "javascript:alert(1)"}}, headers=auth(token)
    )
    password = client.put(
        "/api/user", json={"user": {"password": "a new password"}}, headers=auth(token)
    )
    login = client.post(
        "/api/users/login",
        json={"user": {"email": "jake@example.com", "password": "a new password"}},
    )

    assert changed.status_code == 200
    assert changed.get_json()["user"]["bio"] == "I like to skateboard"
    assert changed.get_json()["user"]["image"] == "https://i.example/j.png"
    assert changed.get_json()["user"]["token"] == token
    assert taken.status_code == 422
    assert taken.get_json()["errors"] == {"username": ["has already been taken"]}
    assert empty.status_code == 422
    assert script.status_code == 422
    assert list(script.get_json()["errors"]) == ["image"]
    assert password.status_code == 200
    assert login.status_code == 200


# -- profiles -----------------------------------------------------------------------------


def test_profiles_and_following(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    sign_up(client, "celeb")

    before = client.get("/api/profiles/celeb", headers=auth(jake))
    followed = client.post("/api/profiles/celeb/follow", headers=auth(jake))
    anonymous = client.get("/api/profiles/celeb")
    unfollowed = client.delete("/api/profiles/celeb/follow", headers=auth(jake))

    assert before.get_json()["profile"] == {
        "username": "celeb",
        "bio": "",
        "image": "",
        "following": False,
    }
    assert followed.status_code == 200
    assert followed.get_json()["profile"]["following"] is True
    assert anonymous.get_json()["profile"]["following"] is False
    assert unfollowed.get_json()["profile"]["following"] is False
    assert client.get("/api/profiles/nobody").status_code == 404
    assert client.post("/api/profiles/celeb/follow").status_code == 401
    assert client.post("/api/profiles/jake/follow", headers=auth(jake)).status_code == 422


# -- articles -----------------------------------------------------------------------------


def test_create_article_gives_a_slug_sorted_tags_and_precise_times(client: FlaskClient) -> None:
    token = sign_up(client, "jake")

    article = write_article(client, token)
    again = write_article(client, token)

    assert article["slug"] == "how-to-train-your-dragon"
    assert again["slug"].startswith("how-to-train-your-dragon-")
    assert article["tagList"] == ["dragons", "training"]
    assert article["body"] == "Very carefully."
    assert TIMESTAMP.match(article["createdAt"])
    assert TIMESTAMP.match(article["updatedAt"])
    assert article["favorited"] is False
    assert article["favoritesCount"] == 0
    assert article["author"] == {"username": "jake", "bio": "", "image": "", "following": False}


def test_create_article_validates_and_needs_auth(client: FlaskClient) -> None:
    token = sign_up(client, "jake")

    invalid = client.post(
        "/api/articles", json={"article": {"title": "", "tagList": "x"}}, headers=auth(token)
    )
    unknown_field = client.post(
        "/api/articles",
        json={"article": {"title": "t", "description": "d", "body": "b", "colour": "red"}},
        headers=auth(token),
    )
    anonymous = client.post(
        "/api/articles", json={"article": {"title": "t", "description": "d", "body": "b"}}
    )

    assert invalid.status_code == 422
    assert set(invalid.get_json()["errors"]) == {"title", "description", "body", "tagList"}
    assert unknown_field.status_code == 201  # a field the API does not know is ignored
    assert "colour" not in unknown_field.get_json()["article"]
    assert anonymous.status_code == 401


def test_an_article_sent_back_whole_updates_it(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    article = write_article(client, jake)

    changed = {**article, "body": "With two hands", "tagList": ["dragons"]}
    updated = client.put(
        f"/api/articles/{article['slug']}", json={"article": changed}, headers=auth(jake)
    )

    assert updated.status_code == 200, updated.get_json()
    body = updated.get_json()["article"]
    assert body["slug"] == article["slug"]
    assert body["body"] == "With two hands"
    assert body["tagList"] == ["dragons"]
    assert body["createdAt"] == article["createdAt"]


def test_list_filters_paginates_and_leaves_out_bodies(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    finn = sign_up(client, "finn")
    first = write_article(client, jake, "First", ["dragons"])
    second = write_article(client, finn, "Second", ["cats"])
    third = write_article(client, jake, "Third", ["dragons", "cats"])
    client.post(f"/api/articles/{second['slug']}/favorite", headers=auth(jake))

    def slugs(query: str) -> tuple[list[str], int]:
        response = client.get(f"/api/articles{query}")
        assert response.status_code == 200
        data = response.get_json()
        return [item["slug"] for item in data["articles"]], data["articlesCount"]

    assert slugs("") == ([third["slug"], second["slug"], first["slug"]], 3)
    assert slugs("?tag=dragons") == ([third["slug"], first["slug"]], 2)
    assert slugs("?author=finn") == ([second["slug"]], 1)
    assert slugs("?favorited=jake") == ([second["slug"]], 1)
    assert slugs("?author=nobody") == ([], 0)
    assert slugs("?limit=1&offset=1") == ([second["slug"]], 3)
    assert "body" not in client.get("/api/articles").get_json()["articles"][0]
    bad = client.get("/api/articles?limit=0&offset=-1")
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"limit", "offset"}


def test_favorited_and_following_depend_on_who_asks(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    finn = sign_up(client, "finn")
    slug = write_article(client, finn)["slug"]
    client.post(f"/api/articles/{slug}/favorite", headers=auth(jake))
    client.post("/api/profiles/finn/follow", headers=auth(jake))

    as_jake = client.get("/api/articles", headers=auth(jake)).get_json()["articles"][0]
    as_nobody = client.get("/api/articles").get_json()["articles"][0]

    assert (as_jake["favorited"], as_jake["favoritesCount"]) == (True, 1)
    assert as_jake["author"]["following"] is True
    assert (as_nobody["favorited"], as_nobody["favoritesCount"]) == (False, 1)
    assert as_nobody["author"]["following"] is False


def test_feed_has_the_followed_authors_articles(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    finn = sign_up(client, "finn")
    sign_up(client, "bmo")
    write_article(client, finn, "By Finn")
    write_article(client, jake, "By Jake")

    empty = client.get("/api/articles/feed", headers=auth(jake)).get_json()
    client.post("/api/profiles/finn/follow", headers=auth(jake))
    feed = client.get("/api/articles/feed", headers=auth(jake)).get_json()

    assert empty == {"articles": [], "articlesCount": 0}
    assert [item["title"] for item in feed["articles"]] == ["By Finn"]
    assert feed["articlesCount"] == 1
    assert client.get("/api/articles/feed").status_code == 401


def test_only_the_author_changes_or_deletes_an_article(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    finn = sign_up(client, "finn")
    slug = write_article(client, jake)["slug"]

    forbidden = client.put(
        f"/api/articles/{slug}", json={"article": {"body": "Mine now"}}, headers=auth(finn)
    )
    not_deleted = client.delete(f"/api/articles/{slug}", headers=auth(finn))
    updated = client.put(
        f"/api/articles/{slug}",
        json={"article": {"title": "Training dragons", "body": "With two hands"}},
        headers=auth(jake),
    )
    new_slug = updated.get_json()["article"]["slug"]

    assert forbidden.status_code == 403
    assert not_deleted.status_code == 403
    assert updated.status_code == 200
    assert new_slug == "training-dragons"
    assert updated.get_json()["article"]["body"] == "With two hands"
    assert client.get(f"/api/articles/{slug}").status_code == 404
    assert client.delete(f"/api/articles/{new_slug}", headers=auth(jake)).status_code == 204
    assert client.get(f"/api/articles/{new_slug}").status_code == 404
    missing = client.put("/api/articles/nope", json={"article": {"body": "x"}}, headers=auth(jake))
    assert missing.status_code == 404


def test_deleting_an_article_deletes_its_comments_and_favourites(
    client: FlaskClient, db_session: Session
) -> None:
    jake = sign_up(client, "jake")
    slug = write_article(client, jake)["slug"]
    client.post(f"/api/articles/{slug}/favorite", headers=auth(jake))
    client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "hi"}}, headers=auth(jake)
    )

    assert client.delete(f"/api/articles/{slug}", headers=auth(jake)).status_code == 204

    for table in ("favorite", "comment", "article_tag", "article"):
        count = db_session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        assert count == 0, table


def test_favourite_and_unfavourite(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    finn = sign_up(client, "finn")
    slug = write_article(client, jake)["slug"]

    once = client.post(f"/api/articles/{slug}/favorite", headers=auth(finn))
    twice = client.post(f"/api/articles/{slug}/favorite", headers=auth(finn))
    undone = client.delete(f"/api/articles/{slug}/favorite", headers=auth(finn))

    assert (
        once.get_json()["article"]["favorited"],
        once.get_json()["article"]["favoritesCount"],
    ) == (
        True,
        1,
    )
    assert twice.get_json()["article"]["favoritesCount"] == 1
    assert undone.get_json()["article"]["favorited"] is False
    assert undone.get_json()["article"]["favoritesCount"] == 0
    assert client.post(f"/api/articles/{slug}/favorite").status_code == 401
    assert client.post("/api/articles/nope/favorite", headers=auth(finn)).status_code == 404


# -- comments -----------------------------------------------------------------------------


def test_comments_are_listed_newest_first_and_deleted_by_their_author(
    client: FlaskClient,
) -> None:
    jake = sign_up(client, "jake")
    finn = sign_up(client, "finn")
    slug = write_article(client, jake)["slug"]

    first = client.post(
        f"/api/articles/{slug}/comments",
        json={"comment": {"body": "Thank you so much!"}},
        headers=auth(finn),
    )
    second = client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "Again"}}, headers=auth(jake)
    )
    comment = first.get_json()["comment"]
    listed = client.get(f"/api/articles/{slug}/comments").get_json()["comments"]

    assert first.status_code == 200  # the spec's status for a new comment
    assert comment["body"] == "Thank you so much!"
    assert comment["author"]["username"] == "finn"
    assert TIMESTAMP.match(comment["createdAt"])
    assert [item["id"] for item in listed] == [second.get_json()["comment"]["id"], comment["id"]]
    url = f"/api/articles/{slug}/comments/{comment['id']}"
    assert client.delete(url, headers=auth(jake)).status_code == 403
    assert client.delete(url).status_code == 401
    assert client.delete(url, headers=auth(finn)).status_code == 204
    assert client.delete(url, headers=auth(finn)).status_code == 404
    assert len(client.get(f"/api/articles/{slug}/comments").get_json()["comments"]) == 1
    empty = client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": " "}}, headers=auth(jake)
    )
    assert empty.status_code == 422
    assert empty.get_json()["errors"] == {"body": ["Must not be empty."]}


# -- tags and caching ---------------------------------------------------------------------


def test_tags_are_the_used_ones_most_used_first_and_follow_writes(client: FlaskClient) -> None:
    jake = sign_up(client, "jake")
    assert client.get("/api/tags").get_json() == {"tags": []}

    write_article(client, jake, "One", ["training"])
    after_one = client.get("/api/tags").get_json()["tags"]
    slug = write_article(client, jake, "Two", ["zebras", "dragons"])["slug"]
    after_two = client.get("/api/tags").get_json()["tags"]
    client.delete(f"/api/articles/{slug}", headers=auth(jake))
    after_delete = client.get("/api/tags").get_json()["tags"]
    write_article(client, jake, "Three", ["zebras", "training"])
    after_three = client.get("/api/tags").get_json()["tags"]

    assert after_one == ["training"]
    assert after_two == ["dragons", "training", "zebras"]
    assert after_delete == ["training"]
    assert after_three == ["training", "zebras"]


def test_anonymous_article_json_is_cached_until_a_write(
    client: FlaskClient, db_session: Session
) -> None:
    jake = sign_up(client, "jake")
    slug = write_article(client, jake)["slug"]
    assert client.get(f"/api/articles/{slug}").get_json()["article"]["body"] == "Very carefully."

    # Changed behind the app's back: anonymous readers keep the cached copy,
    # signed-in readers are never served from the cache.
    db_session.execute(sa.update(Article).values(body="Changed directly"))
    db_session.commit()
    cached = client.get(f"/api/articles/{slug}").get_json()["article"]
    fresh = client.get(f"/api/articles/{slug}", headers=auth(jake)).get_json()["article"]
    # A write through the app forgets the copy.
    client.post(f"/api/articles/{slug}/favorite", headers=auth(jake))
    after = client.get(f"/api/articles/{slug}").get_json()["article"]

    assert cached["body"] == "Very carefully."
    assert fresh["body"] == "Changed directly"
    assert (after["body"], after["favoritesCount"]) == ("Changed directly", 1)


# -- flaskstack's guarantees on this API ----------------------------------------------------


def test_api_clients_of_the_plugin_use_the_token_scheme(
    api_client: ApiClientFactory, make_user: MakeUser
) -> None:
    client = api_client(make_user(username="jake"))

    response = client.get("/api/user")

    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "jake"


def test_cookie_authenticated_writes_need_a_csrf_token(
    client: FlaskClient, make_user: MakeUser, login: Login, csrf_token: CsrfToken
) -> None:
    login(client, make_user(username="jake"))
    article = {"article": {"title": "By cookie", "description": "d", "body": "b"}}

    refused = client.post("/api/articles", json=article)
    accepted = client.post(
        "/api/articles", json=article, headers={"X-CSRFToken": csrf_token(client)}
    )

    assert refused.status_code == 400
    assert refused.mimetype == "application/problem+json"
    assert accepted.status_code == 201
    assert client.get("/api/user").get_json()["user"]["username"] == "jake"


def test_errors_are_problem_documents(client: FlaskClient) -> None:
    not_json = client.post("/api/users", data="user=x", content_type="text/plain")
    broken = client.post("/api/users", data="{", content_type="application/json")
    unknown = client.get("/api/nothing-here")

    assert not_json.status_code == 415
    assert broken.status_code == 400
    assert unknown.status_code == 404
    for response in (not_json, broken, unknown):
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"])
def test_text_the_database_cannot_store_is_refused_not_a_500(
    client: FlaskClient, text: str
) -> None:
    token = sign_up(client, "jake")
    article = {"title": text, "description": "d", "body": "b", "tagList": [text]}

    refused = client.post("/api/articles", json={"article": article}, headers=auth(token))
    query = client.get("/api/articles", query_string={"tag": "a\x00b"})
    path = client.get("/api/profiles/a%00b")
    login = client.post("/api/users/login", json={"user": {"email": text, "password": text}})

    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"title", "tagList.0"}
    assert query.status_code == 422
    assert path.status_code == 404
    assert login.status_code == 422


@pytest.mark.parametrize(
    "path", ["/users", "/users/login", "/articles/{slug}", "/articles/{slug}/comments/{comment_id}"]
)
def test_openapi_document_describes_the_api(client: FlaskClient, path: str) -> None:
    document = client.get("/api/openapi.json").get_json()

    assert document["info"]["title"] == "Conduit"
    assert f"/api{path}" in document["paths"]


def test_openapi_document_states_what_validation_checks(client: FlaskClient, app: Flask) -> None:
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]

    password = schemas["NewUser"]["properties"]["password"]
    assert password["minLength"] == app.config["FLASKSTACK_PASSWORD_MIN_LENGTH"]
    assert password["maxLength"] == app.config["FLASKSTACK_PASSWORD_MAX_LENGTH"]
    assert password["writeOnly"] is True
    image = schemas["UpdateUser"]["properties"]["image"]
    assert image["anyOf"] == [{"const": ""}, {"format": "uri"}]
    assert image["type"] == ["string", "null"]
    username = schemas["NewUser"]["properties"]["username"]["pattern"]
    assert "[A-Za-z0-9][A-Za-z0-9_.-]{0,39}" in username
    # Fields a client may send back are not refused, so the document does not say they are.
    assert "additionalProperties" not in schemas["UpdateArticle"]
    assert "password" not in schemas["Account"]["properties"]
