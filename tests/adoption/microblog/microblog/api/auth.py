"""HTTP Basic auth for getting a token, bearer tokens for everything else."""

import functools

import sqlalchemy as sa
from flask import g, request

from microblog import db
from microblog.api.errors import error_response
from microblog.models import User


def _unauthorized(scheme):
    body, status = error_response(401)
    return body, status, {"WWW-Authenticate": f'{scheme} realm="Authentication Required"'}


def basic_auth_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return _unauthorized("Basic")
        user = db.session.scalar(sa.select(User).where(User.username == auth.username))
        if user is None or not user.check_password(auth.password or ""):
            return _unauthorized("Basic")
        g.current_api_user = user
        return view(*args, **kwargs)

    return wrapped


def token_auth_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        auth = request.authorization
        if auth is None or auth.type != "bearer" or not auth.token:
            return _unauthorized("Bearer")
        user = User.check_token(auth.token)
        if user is None:
            return _unauthorized("Bearer")
        g.current_api_user = user
        return view(*args, **kwargs)

    return wrapped


def current_api_user():
    return g.current_api_user
