import sqlalchemy as sa
from microblog import db
from microblog.models import Post

from .conftest import csrf_token, login


def test_write_and_read_posts(client, susan):
    login(client, "susan", "cat")
    response = client.post(
        "/index",
        data={"post": "my first post", "csrf_token": csrf_token(client, "/index")},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Your post is now live!" in page
    assert "my first post" in page
    assert "my first post" in client.get("/user/susan").get_data(as_text=True)
    assert db.session.scalars(sa.select(Post.body)).all() == ["my first post"]


def test_a_post_needs_a_csrf_token(client, susan):
    login(client, "susan", "cat")
    response = client.post("/index", data={"post": "forged"})
    assert response.status_code != 302
    assert db.session.scalars(sa.select(Post.body)).all() == []


def test_unknown_user_page_is_the_apps_404(client, susan):
    login(client, "susan", "cat")
    response = client.get("/user/nobody")
    assert response.status_code == 404
    assert "File Not Found" in response.get_data(as_text=True)
