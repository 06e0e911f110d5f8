import sqlalchemy as sa
from flask import request, url_for

from microblog import db
from microblog.api import bp
from microblog.api.auth import current_api_user, token_auth_required
from microblog.api.errors import bad_request
from microblog.models import Post


@bp.route("/posts", methods=["GET"])
@token_auth_required
def get_posts():
    posts = db.session.scalars(sa.select(Post).order_by(Post.id)).all()
    return {"items": [post.to_dict() for post in posts]}


@bp.route("/posts/<int:id>", methods=["GET"])
@token_auth_required
def get_post(id):
    return db.get_or_404(Post, id).to_dict()


@bp.route("/posts", methods=["POST"])
@token_auth_required
def create_post():
    data = request.get_json(silent=True) or {}
    body = data.get("body")
    if not isinstance(body, str) or not body.strip():
        return bad_request("must include a body")
    if len(body) > 140:
        return bad_request("body is longer than 140 characters")
    post = Post(body=body, author=current_api_user())
    db.session.add(post)
    db.session.commit()
    return post.to_dict(), 201, {"Location": url_for("api.get_post", id=post.id)}
