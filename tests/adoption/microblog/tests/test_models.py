from datetime import timedelta

from microblog import db
from microblog.models import Post, User


def test_password_hashing(app):
    u = User(username="susan", email="susan@example.com")
    u.set_password("cat")
    assert not u.check_password("dog")
    assert u.check_password("cat")


def test_token_lifecycle(app, susan):
    token = susan.get_token()
    db.session.commit()
    assert User.check_token(token) == susan
    assert susan.get_token() == token
    susan.revoke_token()
    db.session.commit()
    assert User.check_token(token) is None
    susan.token_expiration -= timedelta(days=1)
    assert User.check_token("nonsense") is None


def test_posts_belong_to_their_author(app, susan):
    db.session.add(Post(body="hello", author=susan))
    db.session.commit()
    assert [p.body for p in db.session.scalars(susan.posts.select())] == ["hello"]
    assert susan.to_dict()["post_count"] == 1
