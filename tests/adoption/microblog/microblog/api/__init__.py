from flask import Blueprint

bp = Blueprint("api", __name__)

from microblog.api import errors, posts, tokens, users  # noqa: E402, F401
