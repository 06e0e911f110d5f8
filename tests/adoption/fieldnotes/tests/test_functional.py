"""Functional tests using the test client: what a user does in a browser."""

from fieldnotes.user.models import Note, User

from .conftest import csrf_token, log_in


def test_register_then_log_in_and_out(client, db):
    response = client.post(
        "/register/",
        data={
            "username": "foobar",
            "email": "foo@bar.com",
            "password": "secret",
            "confirm": "secret",
            "csrf_token": csrf_token(client, "/register/"),
        },
        follow_redirects=True,
    )
    assert "Thank you for registering. You can now log in." in response.get_data(as_text=True)
    assert User.query.filter_by(username="foobar").one().email == "foo@bar.com"

    response = log_in(client, "foobar", "secret")
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/"
    page = client.get("/users/").get_data(as_text=True)
    assert "You are logged in." in page
    assert "Welcome foobar" in page

    response = client.get("/logout/", follow_redirects=True)
    assert "You are logged out." in response.get_data(as_text=True)
    assert client.get("/users/").status_code == 401


def test_wrong_password_shows_an_error(client, user):
    response = log_in(client, password="wrong")
    assert response.status_code == 200
    assert "Password - Invalid password" in response.get_data(as_text=True)
    assert client.get("/users/").status_code == 401


def test_cannot_register_a_taken_username(client, user):
    response = client.post(
        "/register/",
        data={
            "username": "jane",
            "email": "other@example.com",
            "password": "secret",
            "confirm": "secret",
            "csrf_token": csrf_token(client, "/register/"),
        },
    )
    assert "Username already registered" in response.get_data(as_text=True)
    assert User.query.count() == 1


def test_members_page_is_the_apps_401_page_when_logged_out(client, db):
    response = client.get("/users/")
    assert response.status_code == 401
    assert "You are not authorized to see this page. Please log in." in response.get_data(
        as_text=True
    )


def test_write_and_read_notes(client, user):
    log_in(client)
    response = client.post(
        "/users/notes",
        data={"body": "buy milk", "csrf_token": csrf_token(client, "/users/notes")},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Note saved." in page
    assert "buy milk" in page
    assert [note.body for note in Note.query.all()] == ["buy milk"]


def test_forms_need_a_csrf_token(client, user):
    log_in(client)
    response = client.post("/users/notes", data={"body": "forged"})
    assert response.status_code == 400
    assert Note.query.count() == 0


def test_about_page_is_public(client, db):
    assert "Field notes keeps your notes." in client.get("/about/").get_data(as_text=True)
    assert client.get("/about/").status_code == 200


def test_unknown_pages_get_the_apps_404_page(client, db):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Sorry, that page doesn't exist." in response.get_data(as_text=True)
