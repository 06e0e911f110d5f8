"""How much the pytest plugin saves: 200 database tests, plugin vs. create_all/drop_all.

Generates a small flaskstack app (its tables: the default ``users`` and
``api_tokens`` and a ``notes`` table) and 200 tests that each insert one row
through ``db_session``, commit, and make one request through ``client`` that
counts the rows. The same test bodies run twice, in separate pytest
processes, on the same database server:

- **plugin**: flaskstack's pytest plugin (``flaskstack_app`` in ``pytest.ini``):
  schema created once, each test rolled back;
- **create_all**: the plugin disabled (``-p no:flaskstack``) and the fixtures
  of the cookiecutter-flask template instead: a new app with a pushed request
  context per test, ``db.create_all()`` before and ``db.drop_all()`` after
  each test.

Each variant runs ``--repeat`` times (default 3) on PostgreSQL and on SQLite,
alternating; the median wall time (the whole ``pytest`` process) and
pytest's own session time are reported. Results go to
``benchmarks/results/plugin.md`` and ``plugin.json``.

Run from the repository root with the project installed::

    python benchmarks/plugin_vs_create_all.py [--tests 200] [--repeat 3]

PostgreSQL is the server at ``FLASKSTACK_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); the benchmark creates its
own databases there and drops them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import typing as t
import uuid
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ADMIN_URL = os.environ.get(
    "FLASKSTACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)

APP = '''
"""The benchmark app."""

import sqlalchemy as sa
from flask import Flask, jsonify
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import db


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")


def create_app(config=None):
    app = Flask(__name__)
    flaskstack.init_app(app, config)

    @app.get("/notes/count")
    def count():
        return jsonify(count=db.session.scalar(sa.select(sa.func.count(Note.id))))

    return app
'''

TESTS = """
import pytest

from bench_app import Note


@pytest.mark.parametrize("n", range({count}))
def test_insert_and_request(n, db_session, client):
    db_session.add(Note(title=f"note {{n}}"))
    db_session.commit()
    assert client.get("/notes/count").get_json() == {{"count": 1}}
"""

# The fixtures of cookiecutter-flask's tests/conftest.py, with flaskstack's settings.
CREATE_ALL_CONFTEST = """
import os

import pytest

from bench_app import create_app
from flaskstack import db


@pytest.fixture
def app():
    app = create_app({
        "FLASKSTACK_PROFILE": "testing",
        "SQLALCHEMY_DATABASE_URI": os.environ["BENCH_DATABASE_URL"],
        "SECRET_KEY": "benchmark-secret-key-0123456789abcdef",
        "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1",
    })
    context = app.test_request_context()
    context.push()
    yield app
    # Not in cookiecutter-flask: close the pool rather than leave it to the GC.
    for engine in db.engines.values():
        engine.dispose()
    context.pop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db_session(app):
    db.create_all()
    yield db.session
    db.session.close()
    db.drop_all()
"""


def _run_pytest(project: Path, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run pytest in ``project``; return (wall seconds, pytest's session seconds)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    wall = time.perf_counter() - started
    summary = re.search(r"(\d+) passed in ([\d.]+)s", result.stdout)
    if result.returncode != 0 or summary is None:
        raise RuntimeError(f"pytest failed in {project}:\n{result.stdout}\n{result.stderr}")
    return wall, float(summary.group(2))


def _write_project(root: Path, variant: str, count: int) -> Path:
    project = root / variant
    (project / "bench_app").mkdir(parents=True)
    (project / "bench_app" / "__init__.py").write_text(textwrap.dedent(APP))
    (project / "test_bench.py").write_text(textwrap.dedent(TESTS.format(count=count)))
    if variant == "plugin":
        (project / "pytest.ini").write_text("[pytest]\nflaskstack_app = bench_app:create_app\n")
    else:
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "conftest.py").write_text(textwrap.dedent(CREATE_ALL_CONFTEST))
    return project


def _admin(sql: str) -> None:
    engine = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _server_version() -> str:
    engine = sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW server_version").scalar())
    finally:
        engine.dispose()


def _base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK", "PYTEST_", "COV_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return env


def run(count: int, repeat: int) -> dict[str, t.Any]:
    backends: dict[str, t.Any] = {}
    with tempfile.TemporaryDirectory(prefix="flaskstack-bench-") as tmp:
        root = Path(tmp)
        projects = {v: _write_project(root, v, count) for v in ("plugin", "create_all")}
        for backend in ("postgresql", "sqlite"):
            times: dict[str, list[tuple[float, float]]] = {"plugin": [], "create_all": []}
            database = f"fs_bench_{uuid.uuid4().hex[:8]}"
            if backend == "postgresql":
                base = make_url(ADMIN_URL).set(drivername="postgresql+psycopg")
                plugin_base = base.set(database=database).render_as_string(hide_password=False)
                baseline_url = base.set(database=database + "_baseline").render_as_string(
                    hide_password=False
                )
                _admin(f'CREATE DATABASE "{database}_baseline"')
            else:
                plugin_base = None
                baseline_url = f"sqlite:///{root / 'baseline.sqlite3'}"
            try:
                for _ in range(repeat):
                    env = _base_env()
                    if plugin_base is not None:
                        env["DATABASE_URL"] = plugin_base
                    times["plugin"].append(_run_pytest(projects["plugin"], [], env))
                    env = {**_base_env(), "BENCH_DATABASE_URL": baseline_url}
                    times["create_all"].append(
                        _run_pytest(projects["create_all"], ["-p", "no:flaskstack"], env)
                    )
            finally:
                if backend == "postgresql":
                    _admin(f'DROP DATABASE IF EXISTS "{database}_baseline" WITH (FORCE)')
            summary: dict[str, t.Any] = {}
            for variant, runs in times.items():
                walls = [wall for wall, _ in runs]
                sessions = [session for _, session in runs]
                summary[variant] = {
                    "wall_s": [round(w, 3) for w in walls],
                    "session_s": [round(s, 3) for s in sessions],
                    "median_wall_s": round(statistics.median(walls), 3),
                    "median_session_s": round(statistics.median(sessions), 3),
                    "ms_per_test": round(statistics.median(sessions) / count * 1000, 2),
                }
            summary["ratio_wall"] = round(
                summary["create_all"]["median_wall_s"] / summary["plugin"]["median_wall_s"], 1
            )
            summary["ratio_session"] = round(
                summary["create_all"]["median_session_s"] / summary["plugin"]["median_session_s"],
                1,
            )
            backends[backend] = summary
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tests": count,
        "repeat": repeat,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "postgresql": _server_version(),
        "sqlite": sqlite3.sqlite_version,
        "versions": {
            name: metadata.version(name)
            for name in ("flask", "flask-sqlalchemy", "sqlalchemy", "pytest", "psycopg")
        },
        "backends": backends,
    }


def to_markdown(results: dict[str, t.Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    lines = [
        "# pytest plugin vs. create_all/drop_all per test",
        "",
        f"{results['tests']} tests, each: one insert through `db_session` + commit, one request "
        "through `client` that counts the rows. Same test bodies; the plugin (schema once, "
        "each test rolled back) against cookiecutter-flask's fixtures (`db.create_all()` before "
        "and `db.drop_all()` after every test, plugin disabled with `-p no:flaskstack`). "
        f"Median of {results['repeat']} alternating runs of each; *wall* is the whole pytest "
        "process (interpreter start, imports, collection), *session* is pytest's own time; "
        "*per test* is session time / tests, so for the plugin it includes its one-time work "
        "(building the probe app, creating the database and its schema, dropping it).",
        "",
        "Generated by `python benchmarks/plugin_vs_create_all.py` on "
        f"{results['date']}: Python {results['python']}, {results['machine']}, "
        f"PostgreSQL {results['postgresql']} on loopback, SQLite {results['sqlite']}; {versions}.",
        "",
        "| database | variant | wall (s) | session (s) | per test (ms) | runs, wall (s) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for backend, summary in results["backends"].items():
        for variant in ("plugin", "create_all"):
            data = summary[variant]
            lines.append(
                f"| {backend} | {variant} | {data['median_wall_s']} | {data['median_session_s']} "
                f"| {data['ms_per_test']} | {', '.join(map(str, data['wall_s']))} |"
            )
    lines += ["", "| database | create_all / plugin, wall | create_all / plugin, session |"]
    lines.append("|---|---:|---:|")
    for backend, summary in results["backends"].items():
        lines.append(f"| {backend} | {summary['ratio_wall']}x | {summary['ratio_session']}x |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    results = run(args.tests, args.repeat)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "plugin.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "plugin.md").write_text(to_markdown(results))
    print(to_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
