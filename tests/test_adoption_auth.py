"""Adopting flaskstack in an app with its own users: nothing of the app's sign-in is taken over.

The app in :data:`BLOG` is written as existing Flask apps are: its own
``User(UserMixin, db.Model)`` (table ``users``, username login,
``password_hash``), its own ``LoginManager`` with a ``user_loader`` by
primary key, ``login_view = "auth.login"``, a ``login_message`` of its own
and its own ``/auth/login`` page. Tests that declare a class ``User`` run it
in a fresh interpreter (in this one, other tests declared flaskstack's
default ``User``); each prints what a browser saw as JSON. The others build
apps here, with the suite's fixtures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import typing as t
from urllib.parse import parse_qs, urlsplit

import flask_login
import pytest
import sqlalchemy as sa
from conftest import SHARED_REDIS_URL
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import db
from flaskstack.auth import auth_required, login_user
from flaskstack.errors import AlreadyInitialisedError

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory
    from flask import Flask

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

BLOG = '''
import sqlalchemy as sa
from flask import Blueprint, Flask, flash, redirect, render_template_string, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required
from werkzeug.security import check_password_hash, generate_password_hash

import flaskstack
from flaskstack import db
from flaskstack.auth import login_user, logout_user

login = LoginManager()
login.login_view = "auth.login"
login.login_message = "Sign in to see your feed."
login.login_message_category = "info"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id = sa.Column(sa.Integer, primary_key=True)
    username = sa.Column(sa.String(64), unique=True, nullable=False)
    password_hash = sa.Column(sa.String(256))

    def set_password(self, password):
        self.password_hash = generate_password_hash(password)

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)


@login.user_loader
def load_user(id):
    return db.session.get(User, int(id))


PAGE = """<!doctype html>
{% for category, message in get_flashed_messages(with_categories=true) %}
<p class="{{ category }}">{{ message }}</p>
{% endfor %}
<form method="post">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <input name="username"> <input name="password" type="password">
</form>
"""

auth = Blueprint("auth", __name__)


def login_page():
    if request.method == "POST":
        user = db.session.execute(
            sa.select(User).where(User.username == request.form["username"])
        ).scalar_one_or_none()
        if user is None or not user.check_password(request.form["password"]):
            flash("Invalid username or password")
            return redirect(url_for("auth.login"))
        login_user(user)
        return redirect(request.args.get("next") or url_for("index"))
    return render_template_string(PAGE)


auth.add_url_rule("/login", "login", login_page, methods=["GET", "POST"])


@auth.route("/logout")
def logout():
    logout_user()
    return redirect(url_for("index"))


def create_app(config):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "the blog's own secret key, long enough for production"
    login.init_app(app)
    flaskstack.init_app(app, config)
    app.register_blueprint(auth, url_prefix="/auth")

    @app.route("/")
    @login_required
    def index():
        return f"feed of {current_user.username}"

    with app.app_context():
        db.create_all()
        alice = User(username="alice")
        alice.set_password("alice's password")
        db.session.add(alice)
        db.session.commit()
    return app
'''


def run(tmp_path: Path, script: str, config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Run ``script`` in a fresh interpreter next to ``blog.py``; return what it printed.

    ``script`` finds ``CONFIG`` (the ``init_app`` config) defined, and
    prints one JSON object as its last line.
    """
    (tmp_path / "blog.py").write_text(BLOG)
    program = f"CONFIG = {config!r}\n" + textwrap.dedent(script)
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    observed: dict[str, t.Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return observed


@pytest.fixture
def blog_config(tmp_path: Path, namespace: t.Callable[[], str]) -> dict[str, t.Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'blog.sqlite'}",
        "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
        "FLASKSTACK_NAMESPACE": namespace(),
        "FLASKSTACK_PROFILE": "testing",
    }


# -- the app's own model, loader and sign-in page -------------------------------------------


def test_the_apps_own_user_model_loader_and_login_page_keep_working(
    tmp_path: Path, blog_config: dict[str, t.Any]
) -> None:
    observed = run(
        tmp_path,
        """
        import json, re
        from blog import create_app
        from flaskstack import db
        BROWSER = {"Accept": "text/html"}
        app = create_app(CONFIG)
        browser = app.test_client()
        seen = {"tables": sorted(db.metadata.tables)}
        anonymous = browser.get("/", headers=BROWSER)
        seen["anonymous"] = [anonymous.status_code, anonymous.headers.get("Location")]
        page = browser.get("/auth/login?next=/", headers=BROWSER)
        seen["page_has_username_field"] = 'name="username"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        before = browser.get_cookie("session").value
        signed_in = browser.post(
            "/auth/login?next=/",
            data={"csrf_token": token, "username": "alice", "password": "alice's password"},
            headers=BROWSER,
        )
        seen["signed_in"] = [signed_in.status_code, signed_in.headers.get("Location")]
        seen["session_rotated"] = browser.get_cookie("session").value != before
        seen["feed"] = browser.get("/", headers=BROWSER).text
        browser.get("/auth/logout", headers=BROWSER)
        seen["after_logout"] = browser.get("/", headers=BROWSER).status_code
        print(json.dumps(seen))
        """,
        blog_config,
    )
    # No default User, no token table next to the app's own ``users``.
    assert observed["tables"] == ["users"]
    # The app's login_view, not flaskstack's page.
    status, location = observed["anonymous"]
    assert status == 302
    assert urlsplit(location).path == "/auth/login"
    assert parse_qs(urlsplit(location).query) == {"next": ["/"]}
    assert observed["page_has_username_field"]
    assert observed["signed_in"] == [302, "/"]
    assert observed["session_rotated"]  # flaskstack.auth.login_user with the app's manager
    assert observed["feed"] == "feed of alice"
    assert observed["after_logout"] == 302


def test_the_apps_login_message_is_flashed(tmp_path: Path, blog_config: dict[str, t.Any]) -> None:
    observed = run(
        tmp_path,
        """
        import json
        from blog import create_app
        app = create_app(CONFIG)
        browser = app.test_client()
        sent_away = browser.get("/", headers={"Accept": "text/html"})
        page = browser.get(sent_away.headers["Location"], headers={"Accept": "text/html"})
        print(json.dumps({"status": sent_away.status_code, "page": page.text}))
        """,
        blog_config,
    )
    assert observed["status"] == 302
    assert '<p class="info">Sign in to see your feed.</p>' in observed["page"]


def test_a_login_message_set_for_flaskstacks_manager_is_flashed_on_its_page(
    make_app: AppFactory, postgres_url: str, namespace: t.Callable[[], str]
) -> None:
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_LOGIN_MESSAGE": "Members only: please sign in.",
        },
        profile="testing",
    )

    @app.get("/members")
    @auth_required
    def members() -> str:
        return "members"

    browser = app.test_client()
    sent_away = browser.get("/members", headers=BROWSER)
    assert sent_away.status_code == 302
    assert urlsplit(sent_away.headers["Location"]).path == "/auth/login"
    page = browser.get(sent_away.headers["Location"], headers=BROWSER)
    assert "Members only: please sign in." in page.text


# -- clashes with flaskstack's default model -----------------------------------------------

CLASHING_MODEL = """
import sqlalchemy as sa
from flaskstack import db

class User(db.Model):
    __tablename__ = "users"
    id = sa.Column(sa.Integer, primary_key=True)
    username = sa.Column(sa.String(64))
"""


@pytest.mark.parametrize("declared", ["before init_app", "after init_app"])
def test_a_user_model_clashing_with_the_default_one_is_a_config_error(
    tmp_path: Path, blog_config: dict[str, t.Any], declared: str
) -> None:
    (tmp_path / "shop_models.py").write_text(CLASHING_MODEL)
    importing = "import shop_models"
    observed = run(
        tmp_path,
        f"""
        import json
        from flask import Flask
        import flaskstack
        app = Flask("shop")
        try:
            {importing if declared == "before init_app" else "pass"}
            flaskstack.init_app(app, CONFIG)
            {importing if declared == "after init_app" else "pass"}
        except Exception as exc:
            print(json.dumps({{"error": type(exc).__name__, "message": str(exc)}}))
        else:
            print(json.dumps({{"error": None}}))
        """,
        blog_config,
    )
    assert observed["error"] == "ConfigError"
    message = observed["message"]
    assert "FLASKSTACK_USER_MODEL" in message
    assert "shop_models.User" in message
    assert "LoginManager" in message  # the other way out: the app's own manager


# -- 401 stays 401 -------------------------------------------------------------------------


class Reader(flask_login.UserMixin, db.Model):  # type: ignore[misc,name-defined]
    """A plain Flask-Login user model: a username, no email, no password protocol."""

    __tablename__ = "adoption_readers"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)


def own_manager_without_login_page(app: Flask) -> None:
    manager = flask_login.LoginManager(app)
    manager.user_loader(lambda user_id: None)

    @app.errorhandler(401)
    def unauthorized(error: Exception) -> tuple[str, int]:
        return "the app's own 401 page", 401


def test_a_401_stays_a_401_without_a_login_page(
    make_app: AppFactory, namespace: t.Callable[[], str]
) -> None:
    app = make_app(
        {"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL, "FLASKSTACK_NAMESPACE": namespace()},
        profile="testing",
        before=own_manager_without_login_page,
    )

    @app.get("/private")
    @flask_login.login_required
    def private() -> str:
        return "private"

    @app.get("/guarded")
    @auth_required
    def guarded() -> str:
        return "guarded"

    browser = app.test_client()
    for path in ("/private", "/guarded"):
        response = browser.get(path, headers=BROWSER)
        assert (response.status_code, response.text) == (401, "the app's own 401 page")
    assert browser.get("/auth/login", headers=BROWSER).status_code == 404  # no pages added


def test_flaskstacks_manager_without_pages_or_login_view_answers_401(
    make_app: AppFactory, namespace: t.Callable[[], str]
) -> None:
    app = make_app(
        {
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_USER_MODEL": Reader,
        },
        profile="testing",
    )

    @app.get("/private")
    @auth_required
    def private() -> str:
        return "private"

    response = app.test_client().get("/private", headers=BROWSER)
    assert response.status_code == 401
    assert "Location" not in response.headers


# -- a second LoginManager ----------------------------------------------------------------


def test_a_second_login_manager_after_init_app_is_refused(
    make_app: AppFactory, namespace: t.Callable[[], str]
) -> None:
    app = make_app(
        {"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL, "FLASKSTACK_NAMESPACE": namespace()},
        profile="testing",
    )
    with pytest.raises(AlreadyInitialisedError, match=r"remove flaskstack\.login_manager"):
        flaskstack.login_manager.init_app(app)

    flask_login.LoginManager(app)  # a line left over from before the adoption
    checked = app.test_cli_runner().invoke(args=["stack", "check", "--tag", "auth"])
    assert "auth.E001" in checked.output
    assert "LoginManager(app)" in checked.output
    with pytest.raises(AlreadyInitialisedError, match=r"remove that LoginManager\(app\)"):
        app.test_client().get("/", headers=BROWSER)


def test_a_login_manager_registered_before_init_app_is_adopted(
    make_app: AppFactory, namespace: t.Callable[[], str]
) -> None:
    app = make_app(
        {"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL, "FLASKSTACK_NAMESPACE": namespace()},
        profile="testing",
        before=own_manager_without_login_page,
    )
    state = flaskstack.get_state(app)
    assert state.auth.own_manager
    assert app.login_manager is not flaskstack.login_manager  # type: ignore[attr-defined]
    assert (state.auth.user_model, state.auth.api_token_model, state.auth.pages) == (
        None,
        None,
        False,
    )
    checked = app.test_cli_runner().invoke(args=["stack", "check", "--tag", "auth"])
    assert "auth.I004" in checked.output
    assert "auth.E001" not in checked.output


# -- flaskstack's pages never shadow the app's --------------------------------------------


def test_flaskstacks_auth_pages_refuse_a_url_the_app_already_has(
    make_app: AppFactory, namespace: t.Callable[[], str]
) -> None:
    def own_login_page(app: Flask) -> None:
        app.add_url_rule("/auth/login", "sign_in", lambda: "the app's sign-in page")

    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_AUTH_URL_PREFIX") as refused:
        make_app(
            {"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL, "FLASKSTACK_NAMESPACE": namespace()},
            profile="testing",
            before=own_login_page,
        )
    assert "'sign_in'" in str(refused.value)

    moved = make_app(
        {
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_AUTH_URL_PREFIX": "/account",
        },
        profile="testing",
        before=own_login_page,
    )
    browser = moved.test_client()
    assert browser.get("/auth/login").text == "the app's sign-in page"
    assert browser.get("/account/login", headers=BROWSER).status_code == 200


# -- the protocols a model needs ----------------------------------------------------------


def test_a_plain_flask_login_model_signs_in_and_check_says_what_is_off(
    make_app: AppFactory, postgres_url: str, namespace: t.Callable[[], str]
) -> None:
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_USER_MODEL": Reader,
        },
        profile="testing",
    )
    auth = flaskstack.get_state(app).auth
    with app.app_context():
        tables = [model.__table__ for model in auth.models]
        db.metadata.create_all(bind=db.engine, tables=tables)
        db.session.add(Reader(username="ada"))
        db.session.commit()

    @app.post("/sign-in/<username>")
    def sign_in(username: str) -> str:
        reader = db.session.execute(
            sa.select(Reader).where(Reader.username == username)
        ).scalar_one()
        login_user(reader)
        return "signed in"

    @app.get("/me")
    @auth_required
    def me() -> str:
        return str(flask_login.current_user.username)

    browser = app.test_client()
    token = browser.get("/csrf-token").get_json()["csrf_token"]
    assert browser.post("/sign-in/ada", headers={"X-CSRFToken": token}).text == "signed in"
    assert browser.get("/me", headers=BROWSER).text == "ada"  # loaded by primary key

    assert browser.get("/auth/login", headers=BROWSER).status_code == 404  # pages off
    checked = app.test_cli_runner().invoke(args=["stack", "check", "--tag", "auth"])
    lines = [line for line in checked.output.splitlines() if "auth." in line]
    assert any("auth.I001" in line and "an email column" in line for line in lines), lines
    assert any("auth.I003" in line and "check_password" in line for line in lines), lines
    assert not any("auth.I002" in line for line in lines), lines  # tokens stay on
    assert re.search(r"auth\.E\d", checked.output) is None
