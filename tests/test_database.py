"""The ORM as an app sees it: URLs, engines, naming convention, shell, readiness.

Every test runs on a real database: SQLite files in the app's instance
folder, and fresh PostgreSQL databases from the ``postgres`` fixtures. The
models below are declared on the shared ``flaskstack.db`` and therefore land
in the one metadata of the whole test process; their tables carry a
``dbtest_`` prefix, and tests create exactly these tables, never
``db.create_all()`` (which would also create every other module's models).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import typing as t

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import db
from flaskstack.database import _normalise_database_url

if t.TYPE_CHECKING:
    from conftest import AppFactory


class DbtestItem(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "dbtest_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


class DbtestParent(db.Model):  # type: ignore[name-defined,misc]
    """Leaves every constraint unnamed, so the naming convention names them."""

    __tablename__ = "dbtest_parent"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(20), unique=True)


class DbtestChild(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "dbtest_child"
    __table_args__ = (
        sa.UniqueConstraint("parent_id", "label"),
        # A CHECK constraint has no columns to derive a name from: the model
        # names it, and the convention prefixes it.
        sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(sa.ForeignKey("dbtest_parent.id"))
    label: Mapped[str] = mapped_column(sa.String(20), index=True)
    quantity: Mapped[int] = mapped_column(default=0)


def create_tables(app: Flask, *models: type[t.Any]) -> None:
    """Create only the tables of ``models`` in ``app``'s database."""
    with app.app_context():
        db.metadata.create_all(bind=db.engine, tables=[model.__table__ for model in models])


def add_items(app: Flask, *names: str) -> None:
    with app.app_context():
        db.session.add_all(DbtestItem(name=name) for name in names)
        db.session.commit()


def item_names() -> list[str]:
    """The names in ``dbtest_item`` of the app whose context is active."""
    return list(db.session.scalars(sa.select(DbtestItem.name).order_by(DbtestItem.id)))


def add_items_view(app: Flask) -> None:
    @app.get("/dbtest/items")
    def list_items() -> t.Any:
        return jsonify(dialect=db.engine.dialect.name, names=item_names())


def postgres_scheme(url: str) -> str:
    """``url`` written with the ``postgres://`` scheme that hosting platforms hand out."""
    assert url.startswith("postgresql://")
    return "postgres://" + url.removeprefix("postgresql://")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_app(request: pytest.FixtureRequest, make_app: AppFactory) -> Flask:
    """An app on the SQLite default, then one on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return make_app()
    return make_app({"SQLALCHEMY_DATABASE_URI": request.getfixturevalue("postgres_url")})


# -- URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:pw@db.example:5432/app", "postgresql+psycopg://u:pw@db.example:5432/app"),
        ("postgresql://u@db.example/app", "postgresql+psycopg://u@db.example/app"),
        (
            "postgres://u@db.example/app?sslmode=require",
            "postgresql+psycopg://u@db.example/app?sslmode=require",
        ),
        ("postgresql+psycopg://u@db.example/app", "postgresql+psycopg://u@db.example/app"),
        ("postgresql+psycopg2://u@db.example/app", "postgresql+psycopg2://u@db.example/app"),
        ("postgresql+asyncpg://u@db.example/app", "postgresql+asyncpg://u@db.example/app"),
        ("sqlite:///relative.sqlite3", "sqlite:///relative.sqlite3"),
        ("sqlite:////abs/path.sqlite3", "sqlite:////abs/path.sqlite3"),
        ("mysql+pymysql://u@db.example/app", "mysql+pymysql://u@db.example/app"),
    ],
)
def test_normalise_database_url(url: str, expected: str) -> None:
    assert _normalise_database_url(url) == expected


def test_without_database_url_the_app_runs_on_sqlite_in_its_instance_folder(
    make_app: AppFactory,
) -> None:
    app = make_app()
    expected_file = os.path.join(app.instance_path, "testapp.sqlite3")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + expected_file

    create_tables(app, DbtestItem)
    add_items(app, "first")

    assert os.path.isfile(expected_file)
    with app.app_context():
        assert db.engine.dialect.name == "sqlite"
        assert item_names() == ["first"]
    with sa.create_engine("sqlite:///" + expected_file).connect() as connection:
        assert connection.execute(sa.text("SELECT name FROM dbtest_item")).scalars().all() == [
            "first"
        ]


def test_postgres_scheme_from_the_environment_runs_on_psycopg(
    make_app: AppFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_scheme(postgres_url))
    app = make_app()

    assert app.config["SQLALCHEMY_DATABASE_URI"] == _normalise_database_url(postgres_url)
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    create_tables(app, DbtestItem)
    add_items(app, "on postgres")
    with app.app_context():
        assert (db.engine.dialect.name, db.engine.dialect.driver) == ("postgresql", "psycopg")
        assert item_names() == ["on postgres"]

    # The row is in the PostgreSQL database itself, and nothing went to SQLite.
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT name FROM dbtest_item").fetchall()
    assert rows == [("on postgres",)]
    assert not any(name.endswith(".sqlite3") for name in os.listdir(app.instance_path))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            "postgres+psycopg2://u@db.example/app",
            "SQLAlchemy has no database dialect or driver named 'postgres+psycopg2'",
            id="unknown-dialect",
        ),
        pytest.param(
            "postgresql+nosuchdriver://u@db.example/app",
            "SQLAlchemy has no database dialect or driver named 'postgresql+nosuchdriver'",
            id="unknown-driver",
        ),
        pytest.param("postgres://u@db.example:54x2/app", "54x2", id="port-not-a-number"),
    ],
)
def test_an_unusable_database_url_is_a_config_error(
    tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    app = Flask("badurl", instance_path=str(tmp_path / "instance"))

    with pytest.raises(flaskstack.ConfigError) as caught:
        flaskstack.init_app(app)

    [problem] = caught.value.problems
    assert (problem.id, problem.key) == ("config.E001", "SQLALCHEMY_DATABASE_URI")
    assert reason in problem.expected
    assert "environment variable DATABASE_URL" in problem.fix
    assert "sqlalchemy" not in app.extensions
    assert "flaskstack" not in app.extensions


def test_a_dialect_registered_with_sqlalchemy_is_accepted(
    make_app: AppFactory, tmp_path: t.Any
) -> None:
    """Whether a dialect exists is SQLAlchemy's call: a plugin's dialect works as a built-in."""
    sa.dialects.registry.register(
        "dbtestplugin.lite", "sqlalchemy.dialects.sqlite.pysqlite", "SQLiteDialect_pysqlite"
    )
    url = f"dbtestplugin+lite:///{tmp_path / 'plugin.sqlite3'}"

    app = make_app({"SQLALCHEMY_DATABASE_URI": url})

    with app.app_context():
        assert db.session.execute(sa.text("SELECT 41 + 1")).scalar_one() == 42
    assert (tmp_path / "plugin.sqlite3").is_file()


# -- several apps -------------------------------------------------------------


def test_two_apps_side_by_side_each_see_only_their_own_rows(
    make_app: AppFactory, postgres_url: str
) -> None:
    lite = make_app(name="liteapp")
    pg = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url}, name="pgapp")
    for app in (lite, pg):
        create_tables(app, DbtestItem)
        add_items_view(app)

    add_items(lite, "lite-1")
    add_items(pg, "pg-1")
    with pg.app_context():
        db.session.add(DbtestItem(name="pg-2"))
        # Another app's context pushed on top, with pg's session still open.
        with lite.app_context():
            add_items(lite, "lite-2")
            assert item_names() == ["lite-1", "lite-2"]
        db.session.commit()
        assert item_names() == ["pg-1", "pg-2"]

    lite_client, pg_client = lite.test_client(), pg.test_client()
    for _ in range(2):  # alternate requests between the apps
        assert lite_client.get("/dbtest/items").get_json() == {
            "dialect": "sqlite",
            "names": ["lite-1", "lite-2"],
        }
        assert pg_client.get("/dbtest/items").get_json() == {
            "dialect": "postgresql",
            "names": ["pg-1", "pg-2"],
        }
    with pg.test_request_context():
        assert pg_client.get("/dbtest/items").get_json()["names"] == ["pg-1", "pg-2"]
        assert lite_client.get("/dbtest/items").get_json()["names"] == ["lite-1", "lite-2"]
        assert item_names() == ["pg-1", "pg-2"]


# -- naming convention ----------------------------------------------------------


def test_unnamed_constraints_and_indexes_get_conventional_names(backend_app: Flask) -> None:
    create_tables(backend_app, DbtestParent, DbtestChild)

    with backend_app.app_context():
        inspector = sa.inspect(db.engine)
        parent_uniques = [u["name"] for u in inspector.get_unique_constraints("dbtest_parent")]
        child_uniques = [u["name"] for u in inspector.get_unique_constraints("dbtest_child")]
        foreign_keys = [fk["name"] for fk in inspector.get_foreign_keys("dbtest_child")]
        # PostgreSQL also lists the index behind each unique constraint.
        indexes = [
            ix["name"]
            for ix in inspector.get_indexes("dbtest_child")
            if "duplicates_constraint" not in ix
        ]
        checks = [ck["name"] for ck in inspector.get_check_constraints("dbtest_child")]
        primary_key = inspector.get_pk_constraint("dbtest_parent")["name"]

    assert parent_uniques == ["uq_dbtest_parent_code"]
    assert child_uniques == ["uq_dbtest_child_parent_id_label"]
    assert foreign_keys == ["fk_dbtest_child_parent_id_dbtest_parent"]
    assert indexes == ["ix_dbtest_child_label"]
    assert checks == ["ck_dbtest_child_quantity_not_negative"]
    assert primary_key == "pk_dbtest_parent"


# -- engine options -------------------------------------------------------------


def connection_parameters() -> dict[str, str]:
    """libpq parameters of the pooled psycopg connection of the active app."""
    dbapi_connection = db.session.connection().connection.dbapi_connection
    assert isinstance(dbapi_connection, psycopg.Connection)
    return dbapi_connection.info.get_parameters()


def test_engine_options_add_nothing_on_sqlite(make_app: AppFactory) -> None:
    app = make_app()

    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {}


def test_engine_options_default_to_a_connect_timeout_and_no_ping_on_postgres(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url})

    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {"connect_args": {"connect_timeout": 5}}
    with app.app_context():
        assert connection_parameters()["connect_timeout"] == "5"


def test_connect_timeout_setting_is_rounded_up_to_whole_seconds(
    make_app: AppFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_DATABASE_CONNECT_TIMEOUT", "2.5")
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url})

    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"connect_timeout": 3}
    with app.app_context():
        assert connection_parameters()["connect_timeout"] == "3"


def test_engine_options_the_user_sets_win(make_app: AppFactory, postgres_url: str) -> None:
    options = {
        "pool_pre_ping": False,
        "connect_args": {"connect_timeout": 1, "application_name": "dbtest-user"},
    }
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url, "SQLALCHEMY_ENGINE_OPTIONS": options})

    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == options
    with app.app_context():
        parameters = connection_parameters()
        assert parameters["connect_timeout"] == "1"
        assert db.session.scalar(sa.text("SELECT current_setting('application_name')")) == (
            "dbtest-user"
        )


def test_engine_options_set_by_the_factory_are_completed_not_replaced(
    make_app: AppFactory, postgres_url: str
) -> None:
    def factory_config(app: Flask) -> None:
        app.config["SQLALCHEMY_DATABASE_URI"] = postgres_url
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_size": 3,
            "connect_args": {"application_name": "dbtest-factory"},
        }

    app = make_app(before=factory_config)

    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {
        "pool_size": 3,
        "connect_args": {"connect_timeout": 5, "application_name": "dbtest-factory"},
    }
    with app.app_context():
        assert db.engine.pool.size() == 3  # type: ignore[attr-defined]
        assert connection_parameters()["connect_timeout"] == "5"
        assert db.session.scalar(sa.text("SELECT current_setting('application_name')")) == (
            "dbtest-factory"
        )


def terminate_backend(url: str, pid: int) -> None:
    """Kill the server process behind one connection, as a database restart would.

    ``url`` is any database of the server, reached as the superuser.
    """
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} did not exit"
            time.sleep(0.02)


def last_statement(url: str, pid: int) -> str:
    """What the server last ran for the backend ``pid``, seen from another connection."""
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None, f"no backend {pid}"
    return str(row[0])


def test_a_connection_the_server_killed_is_replaced_at_checkout(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url})
    with app.app_context():
        first_pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
    # The app context is gone: its connection is back in the pool, still open.
    with app.app_context():
        assert db.engine.pool.checkedin() == 1  # type: ignore[attr-defined]

    terminate_backend(postgres_url, first_pid)

    with app.app_context():
        second_pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
    assert second_pid != first_pid
    response = app.test_client().get("/readyz")
    assert response.status_code == 200


def test_a_healthy_pooled_connection_is_reused_without_a_round_trip(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url})
    with app.app_context():
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
    assert last_statement(postgres_url, pid) == "ROLLBACK"  # the pool's reset on return

    with app.app_context():
        db.session.connection()  # checked out again: nothing is sent (no ping)
        assert last_statement(postgres_url, pid) == "ROLLBACK"
        assert db.session.scalar(sa.text("SELECT pg_backend_pid()")) == pid


def test_a_connection_lost_after_the_views_last_statement_still_answers(
    make_app: AppFactory, postgres_url: str
) -> None:
    """Ending the session fails on a dead connection; the finished response still goes out."""
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url})

    @app.get("/lost")
    def lost() -> str:
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))  # a transaction is open
        terminate_backend(postgres_url, pid)
        return "answered"

    client = app.test_client()
    response = client.get("/lost")

    assert (response.status_code, response.text) == (200, "answered")
    assert client.get("/readyz").status_code == 200


def test_pool_pre_ping_set_by_the_user_pings_on_checkout(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        }
    )
    with app.app_context():
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))

    with app.app_context():
        db.session.connection()
        assert last_statement(postgres_url, pid) != "ROLLBACK"  # psycopg's ping


def test_with_pool_pre_ping_off_a_killed_connection_is_still_replaced(
    make_app: AppFactory, postgres_url: str
) -> None:
    """``pool_pre_ping=False`` turns off a round trip flaskstack does not make anyway."""
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False},
        }
    )
    with app.app_context():
        first_pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))

    terminate_backend(postgres_url, first_pid)

    with app.app_context():
        assert db.session.scalar(sa.text("SELECT pg_backend_pid()")) != first_pid


# -- flask shell, /readyz, registration -------------------------------------------


def test_shell_context_has_db_and_the_models(make_app: AppFactory) -> None:
    app = make_app()

    with app.app_context():  # as in `flask shell`
        context = app.make_shell_context()

    assert context["db"] is flaskstack.db
    assert context["DbtestItem"] is DbtestItem
    assert context["DbtestParent"] is DbtestParent
    assert context["DbtestChild"] is DbtestChild
    assert context["app"] is app


def test_readyz_reports_a_database_that_refuses_connections(make_app: AppFactory) -> None:
    # A port that accepts TCP connections but never answers: had init_app
    # opened a connection, one would be waiting in the listen queue.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        app = make_app({"SQLALCHEMY_DATABASE_URI": f"postgresql://postgres@127.0.0.1:{port}/app"})
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()

    # The port is closed now: the server refuses connections.
    client = app.test_client()
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["database"]
    assert body["checks"]["database"]["status"] == "error"
    assert client.get("/healthz").status_code == 200


def test_readyz_is_ok_when_the_database_answers(backend_app: Flask) -> None:
    response = backend_app.test_client().get("/readyz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert body["checks"]["database"]["status"] == "ok"


def test_db_registered_by_hand_before_init_app_is_refused(
    make_app: AppFactory, tmp_path: t.Any
) -> None:
    def register_db_by_hand(app: Flask) -> None:
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'by-hand.sqlite3'}"
        flaskstack.db.init_app(app)

    with pytest.raises(flaskstack.AlreadyInitialisedError, match=r"remove db\.init_app\(app\)"):
        make_app(before=register_db_by_hand)


def test_migrate_registered_by_hand_before_init_app_is_refused(make_app: AppFactory) -> None:
    def register_migrate_by_hand(app: Flask) -> None:
        flaskstack.migrate.init_app(app, flaskstack.db)

    with pytest.raises(
        flaskstack.AlreadyInitialisedError, match=r"remove migrate\.init_app\(app, db\)"
    ):
        make_app(before=register_migrate_by_hand)


def test_migrate_registered_by_hand_after_init_app_is_refused(make_app: AppFactory) -> None:
    app = make_app()

    with pytest.raises(
        flaskstack.AlreadyInitialisedError, match=r"Remove migrate\.init_app\(app, db\)"
    ):
        flaskstack.migrate.init_app(app, flaskstack.db)


def test_a_second_init_app_on_the_same_app_is_refused(make_app: AppFactory) -> None:
    app = make_app()

    with pytest.raises(flaskstack.AlreadyInitialisedError, match="already called"):
        flaskstack.init_app(app)


def test_sqlite_enforces_foreign_keys(make_app: AppFactory) -> None:
    app = make_app()
    with app.app_context():
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1


def test_an_unreachable_database_is_a_503_not_a_500(make_app: AppFactory) -> None:
    # Nothing listens on port 1: every connection attempt is refused at once.
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none",
            "PROPAGATE_EXCEPTIONS": False,
        }
    )

    @app.get("/count")
    def count() -> str:
        return str(db.session.execute(sa.text("SELECT 1")).scalar_one())

    client = app.test_client()
    page = client.get("/count", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert page.headers["Retry-After"] == "5"
    assert "database cannot be reached" in page.text

    as_json = client.get("/count", headers={"Accept": "application/json"})
    assert as_json.status_code == 503
    assert as_json.mimetype == "application/problem+json"
    assert as_json.get_json()["status"] == 503


def test_other_database_errors_stay_500s(make_app: AppFactory, postgres_url: str) -> None:
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url, "PROPAGATE_EXCEPTIONS": False})

    @app.get("/broken")
    def broken() -> str:
        return str(db.session.execute(sa.text("SELECT * FROM no_such_table")).scalar_one())

    @app.get("/after")
    def after() -> str:
        return str(db.session.execute(sa.text("SELECT 41 + 1")).scalar_one())

    client = app.test_client()
    assert client.get("/broken").status_code == 500
    assert client.get("/after").text == "42"


# -- which database errors are outages (503) and which are bugs (500) ------------------


def add_broken_views(app: Flask) -> None:
    @app.get("/no-table")
    def no_table() -> str:
        return str(db.session.execute(sa.text("SELECT * FROM no_such_table")).scalar_one())

    @app.get("/no-column")
    def no_column() -> str:
        return str(db.session.execute(sa.text("SELECT no_such_column FROM dbtest_item")).all())

    @app.get("/after")
    def after() -> str:
        return str(db.session.execute(sa.text("SELECT 41 + 1")).scalar_one())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_missing_table_or_column_is_a_500_not_an_outage(
    backend: str, make_app: AppFactory, request: pytest.FixtureRequest
) -> None:
    config: dict[str, t.Any] = {"PROPAGATE_EXCEPTIONS": False}
    if backend == "postgresql":
        config["SQLALCHEMY_DATABASE_URI"] = request.getfixturevalue("postgres_url")
    app = make_app(config)
    create_tables(app, DbtestItem)
    add_broken_views(app)
    client = app.test_client()

    for path in ("/no-table", "/no-column"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 500, path
        assert "Retry-After" not in response.headers
        assert "cannot be reached" not in response.text
    assert client.get("/after").text == "42"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_missing_table_propagates_in_testing_and_debug(
    backend: str, make_app: AppFactory, request: pytest.FixtureRequest
) -> None:
    config: dict[str, t.Any] = {"TESTING": True}
    if backend == "postgresql":
        config["SQLALCHEMY_DATABASE_URI"] = request.getfixturevalue("postgres_url")
    app = make_app(config)
    add_broken_views(app)

    # Flask's debugger (--debug) and the test client see the real error.
    with pytest.raises(sa.exc.DBAPIError, match="no_such_table"):
        app.test_client().get("/no-table")


def test_a_sqlite_file_out_of_reach_is_a_503(make_app: AppFactory, tmp_path: t.Any) -> None:
    folder = tmp_path / "data"
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'app.sqlite3'}",
            "PROPAGATE_EXCEPTIONS": False,
        }
    )
    add_broken_views(app)
    # The folder init_app made is gone, and a file stands in its place.
    folder.rmdir()
    folder.write_text("not a folder")

    response = app.test_client().get("/after")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


def test_a_locked_sqlite_database_is_a_503(make_app: AppFactory, tmp_path: t.Any) -> None:
    path = tmp_path / "locked.sqlite3"
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            # Give up on the lock at once rather than after pysqlite's 5 s.
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 0}},
            "PROPAGATE_EXCEPTIONS": False,
        }
    )

    @app.get("/tables")
    def tables() -> str:
        return str(db.session.execute(sa.text("SELECT count(*) FROM sqlite_master")).scalar())

    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        response = app.test_client().get("/tables")
    finally:
        holder.close()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert app.test_client().get("/tables").text == "0"


def test_readyz_fails_for_a_sqlite_file_that_is_not_a_database(
    make_app: AppFactory, tmp_path: t.Any
) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a SQLite database file, just some text " * 100)
    app = make_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["failed"] == ["database"]
