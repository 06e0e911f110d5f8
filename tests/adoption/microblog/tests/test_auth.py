import sqlalchemy as sa
from microblog import db
from microblog.models import User

from .conftest import csrf_token, login


def test_register_login_logout(client):
    response = client.post(
        "/auth/register",
        data={
            "username": "john",
            "email": "john@example.com",
            "password": "secret",
            "password2": "secret",
            "csrf_token": csrf_token(client, "/auth/register"),
        },
        follow_redirects=True,
    )
    assert "Congratulations, you are now a registered user!" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(User.email).where(User.username == "john")) == (
        "john@example.com"
    )

    response = login(client, "john", "secret")
    assert response.status_code == 302
    assert response.headers["Location"] == "/index"
    assert "Hi, john!" in client.get("/index").get_data(as_text=True)

    response = client.get("/auth/logout")
    assert response.status_code == 302
    assert client.get("/index").status_code == 302


def test_login_with_a_wrong_password_is_refused(client, susan):
    response = login(client, "susan", "dog")
    assert response.headers["Location"] == "/auth/login"
    page = client.get("/auth/login").get_data(as_text=True)
    assert "Invalid username or password" in page
    assert client.get("/index").status_code == 302


def test_anonymous_users_are_sent_to_the_login_page(client, susan):
    response = client.get("/index")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=%2Findex"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Please log in to access this page." in page

    response = login(client, "susan", "cat")
    assert response.headers["Location"] == "/index"


def test_forms_need_a_csrf_token(client, susan):
    response = client.post("/auth/login", data={"username": "susan", "password": "cat"})
    assert response.status_code != 302  # no redirect to the next page: not signed in
    assert client.get("/index").status_code == 302


def test_remember_me_signs_in_without_the_session(client, susan):
    login(client, "susan", "cat", remember=True)
    remember = client.get_cookie("remember_token")
    assert remember is not None
    client.delete_cookie("session")
    assert "Hi, susan!" in client.get("/index").get_data(as_text=True)
