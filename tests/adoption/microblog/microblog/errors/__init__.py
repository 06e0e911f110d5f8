from flask import Blueprint

bp = Blueprint("errors", __name__)

from microblog.errors import handlers  # noqa: E402, F401
