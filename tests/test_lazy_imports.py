"""Start-up cost: what a worker imports only once it needs it.

A web worker that has built its app has not imported redis-py (until the
first Redis call), the database driver (until the first statement: engines
are created on first use) nor the ``flask stack`` commands and the system
checks (until such a command runs). Each scenario runs in a fresh interpreter,
since this process has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing as t

import pytest
import redis
from conftest import SHARED_REDIS_URL

import flaskstack
from flaskstack._redis_url import parse_redis_url
from flaskstack.redis import _make_client

if t.TYPE_CHECKING:
    from pathlib import Path

STRONG_SECRET = "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w"

DEFERRED = (
    "redis",
    "psycopg",
    "sqlalchemy.dialects.postgresql",
    "flaskstack.cli",
    "flaskstack.checks",
)

WORKER = textwrap.dedent(
    f"""
    import json, sys

    from flask import Flask

    import flaskstack

    def loaded():
        return sorted(name for name in {DEFERRED!r} if name in sys.modules)

    seen = {{"after_import": loaded()}}
    app = Flask("lazyapp", instance_path=sys.argv[1])
    flaskstack.init_app(app, {{"FLASKSTACK_NAMESPACE": sys.argv[2]}}, profile="production")
    seen["after_init_app"] = loaded()
    seen["healthz"] = app.test_client().get("/healthz").status_code
    seen["after_healthz"] = loaded()
    with app.app_context():
        seen["cached"] = flaskstack.cache.set("answer", 42) and flaskstack.cache.get("answer")
    seen["after_cache"] = loaded()
    with app.app_context():
        seen["selected"] = flaskstack.db.session.scalar(flaskstack.db.text("SELECT 7"))
    seen["after_select"] = loaded()
    config = app.test_cli_runner().invoke(args=["stack", "config"])
    seen["config_exit"] = config.exit_code
    seen["config_profile"] = config.output.splitlines()[0]
    seen["after_stack_config"] = loaded()
    flaskstack.get_state(app).redis.close()
    print(json.dumps(seen))
    """
)


def test_a_worker_imports_the_driver_and_the_commands_only_when_used(
    tmp_path: Path, postgres_url: str, namespace: t.Callable[[], str]
) -> None:
    env = dict(
        os.environ,
        DATABASE_URL=postgres_url,
        REDIS_URL=SHARED_REDIS_URL,
        SECRET_KEY=STRONG_SECRET,
    )
    run = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "instance"), namespace()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["after_import"] == []
    # SQLAlchemy finds the dialect (not the driver) when the settings are validated.
    assert seen["after_init_app"] == ["sqlalchemy.dialects.postgresql"]
    assert seen["healthz"] == 200
    assert seen["after_healthz"] == ["sqlalchemy.dialects.postgresql"]  # no Redis needed
    assert seen["cached"] == 42
    assert seen["after_cache"] == ["redis", "sqlalchemy.dialects.postgresql"]
    assert seen["selected"] == 7
    assert seen["after_select"] == ["psycopg", "redis", "sqlalchemy.dialects.postgresql"]
    assert seen["config_exit"] == 0
    assert seen["config_profile"] == "profile: production"
    assert seen["after_stack_config"] == sorted(DEFERRED)


# Standalone URLs are redis-py's to judge when it builds the client; flaskstack
# adds one rule, checked without importing redis-py: a TCP URL names a host.
STANDALONE_URLS = [
    "redis://127.0.0.1:6379/2",
    "redis://h",
    "redis://user:p%40ss@h:6380/1",
    "rediss://:pw@cache.internal:6380/0",
    "redis://[::1]:6379/3",
    "redis://h/notanumber",
    "redis://h/4?db=5",
    "redis://h?socket_timeout=0.5&health_check_interval=30&client_name=web",
    "redis://h?ssl_include_verify_flags=VERIFY_X509_STRICT,VERIFY_X509_PARTIAL_CHAIN",
    "unix:///run/redis.sock",
    "unix:///run/redis.sock?db=3",
    "unix://:secret@/run/redis.sock?db=1",
    "redis://h:70x0",
    "redis://h:99999",
    "redis://h?db=x",
    "redis://h?socket_timeout=soon",
    "redis://h?max_connections=1.5",
    "redis://h?ssl_exclude_verify_flags=VERIFY_NOTHING",
    "unix:///run/redis.sock?protocol=three",
    "redis://[::1:6379",
    "redis://:70x0",
    "REDIS://h",
]


@pytest.mark.parametrize("url", STANDALONE_URLS)
def test_standalone_urls_are_judged_by_redis_py(url: str) -> None:
    try:
        redis.ConnectionPool.from_url(url)
        refused = None
    except ValueError as exc:
        refused = str(exc)
    try:
        target = parse_redis_url(url)
    except ValueError as exc:
        flaskstack_refused = str(exc)
    else:
        flaskstack_refused = None
    if flaskstack_refused is not None:
        # flaskstack's own rule, checked without redis-py: a TCP URL names a host.
        assert flaskstack_refused == "no host" or refused is not None, (url, flaskstack_refused)
        return
    assert target.kind == "standalone"
    if refused is None:
        client = _make_client(target, timeout=1)  # opens no connection
        client.close()
        return
    # redis-py reads the rest when it builds the client: its refusal, as a ConfigError.
    with pytest.raises(flaskstack.ConfigError) as caught:
        _make_client(target, timeout=1)
    (problem,) = caught.value.problems
    assert problem.key == "FLASKSTACK_REDIS_URL"
    assert refused in problem.value
