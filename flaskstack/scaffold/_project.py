"""Generating a project: names, the target directory, the templates, the first migration.

Every file of a new project comes from ``templates/project/``: a path part
``__package__`` becomes the package name, the ``.tmpl`` suffix is dropped and
the text is rendered with Jinja using ``[[ ]]`` and ``[% %]`` delimiters, so
the Jinja templates of the generated app (``{{ }}``, ``{% %}``) pass through
untouched. The first migration is not a template: ``flask db migrate`` writes
it from the generated models, so it always matches them.

The project is built in a staging directory beside the target and moved into
place only when it is complete: a failure leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import importlib.util
import keyword
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

import jinja2

from flaskstack.errors import FlaskStackError

if t.TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = [
    "FIRST_MIGRATION_MESSAGE",
    "Options",
    "ScaffoldError",
    "check_name",
    "check_target",
    "generate",
    "readme_commands",
]

TEMPLATE_SUFFIX = ".tmpl"
PACKAGE_PLACEHOLDER = "__package__"
FIRST_MIGRATION_MESSAGE = "create accounts and notes"

# The Kubernetes manifests run the Docker image, so they come with it.
_KUBERNETES_FILES = frozenset(
    f"deploy/kubernetes/{name}.tmpl"
    for name in (
        "base/kustomization.yaml",
        "base/config.env",
        "base/migrate.yaml",
        "base/web.yaml",
        "base/worker.yaml",
        "base/service.yaml",
        "base/autoscaling.yaml",
        "base/disruption-budget.yaml",
        "example/kustomization.yaml",
        "example/secrets.env.example",
        "example/.gitignore",
    )
)

# Files that exist only when their feature is switched on.
_FEATURE_FILES: dict[str, frozenset[str]] = {
    "api": frozenset({f"{PACKAGE_PLACEHOLDER}/api.py.tmpl", "tests/test_api.py.tmpl"}),
    "docker": frozenset(
        {"Dockerfile.tmpl", "docker-compose.yml.tmpl", ".env.example.tmpl", ".dockerignore.tmpl"}
    )
    | _KUBERNETES_FILES,
}

# Names a project package must not take: it would shadow what the project imports,
# or collide with the project's own directories.
_TAKEN = frozenset(
    {
        "alembic",
        "click",
        "flask",
        "flask_caching",
        "flask_login",
        "flask_migrate",
        "flask_restful",
        "flask_sqlalchemy",
        "flask_wtf",
        "flaskstack",
        "gunicorn",
        "instance",
        "itsdangerous",
        "jinja2",
        "migrations",
        "psycopg",
        "pytest",
        "redis",
        "sqlalchemy",
        "test",
        "tests",
        "werkzeug",
        "wtforms",
    }
)
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_MAX_NAME_LENGTH = 50

# Variables flaskstack reads; the migration step runs without the caller's.
_READ_PREFIXES = ("FLASK_", "FLASKSTACK_")
_READ_NAMES = frozenset({"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "FLASK_APP"})


class ScaffoldError(FlaskStackError, ValueError):
    """The project cannot be generated; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Options:
    """What ``flaskstack new`` generates.

    :param name: The project's name, also its Python package.
    :param target: The directory to create; it must not exist or be empty.
    :param api: Include the example REST resource under ``/api``.
    :param docker: Include ``Dockerfile``, ``docker-compose.yml``, ``.env.example``,
        ``.dockerignore`` and the Kubernetes manifests in ``deploy/kubernetes/``.
    """

    name: str
    target: Path
    api: bool = True
    docker: bool = True


def check_name(name: str) -> None:
    """Refuse a project name that cannot be a Python package of its own.

    :raises ScaffoldError: naming the problem and a name that would do.
    """
    suggestion = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    suggestion = re.sub(r"^[0-9_]+", "", suggestion)
    hint = f" (e.g. {suggestion!r})" if suggestion and _NAME.match(suggestion) else ""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a valid project name: it is also the Python package, so use "
            f"lower-case letters, digits and underscores, starting with a letter{hint}."
        )
    if len(name) > _MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"{name!r} is too long for a project name: use at most {_MAX_NAME_LENGTH} characters."
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(
            f"{name!r} is a Python keyword and cannot name a package: pick another name."
        )
    if name in sys.stdlib_module_names or name in _TAKEN:
        raise ScaffoldError(
            f"{name!r} is the name of a module the project imports (or of one of its "
            "directories); a package of that name would shadow it: pick another name."
        )
    if importlib.util.find_spec(name) is not None:
        raise ScaffoldError(
            f"A module named {name!r} is already installed in this environment; a project "
            "package of the same name would shadow it: pick another name."
        )


def check_target(target: Path) -> None:
    """Refuse a target that is a file or a directory with anything in it.

    :raises ScaffoldError: naming the path and what to do.
    """
    if target.exists() and not target.is_dir():
        raise ScaffoldError(
            f"{str(target)!r} exists and is not a directory: choose another --directory."
        )
    if target.is_dir():
        entries = sorted(entry.name for entry in target.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise ScaffoldError(
                f"{str(target)!r} is not empty (it holds {shown}): flaskstack new only "
                "writes into a new or empty directory. Choose another --directory or "
                "remove its contents."
            )


def readme_commands(package: str) -> list[tuple[str, str]]:
    """The commands that set up and run a new project, with what each does.

    The generated README and the summary ``flaskstack new`` prints both show
    them, in this order.
    """
    return [
        ("python -m pip install -e '.[test]'", "the app, gunicorn and pytest"),
        (f"flask --app {package} db upgrade", "the tables (SQLite in instance/ by default)"),
        ("python -m pytest", "the tests"),
        (f"flask --app {package} run --debug", "serves http://127.0.0.1:5000"),
    ]


def generate(options: Options) -> list[Path]:
    """Create the project described by ``options``; return its files, relative to the target.

    :raises ScaffoldError: when the name or the target is refused, or the first
        migration cannot be generated. Nothing is left behind then.
    """
    check_name(options.name)
    target = options.target.absolute()
    check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{options.name}-", dir=target.parent))
    except OSError as exc:
        raise ScaffoldError(
            f"Cannot create the project in {str(target)!r}: {exc.strerror or exc}. "
            "Choose a --directory you can write to."
        ) from exc
    try:
        _render(staging, options)
        _first_migration(staging, options.name)
        _remove_caches(staging)
        if target.is_dir():
            # Fill the existing (empty) directory: a shell may have it as its cwd.
            for entry in staging.iterdir():
                entry.rename(target / entry.name)
            staging.rmdir()
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(path.relative_to(target) for path in target.rglob("*") if path.is_file())


def _context(options: Options) -> dict[str, t.Any]:
    from flaskstack import __version__

    package = options.name
    return {
        "name": package,
        "distribution": package.replace("_", "-"),
        "package": package,
        "title": package.replace("_", " ").capitalize(),
        "api": options.api,
        "docker": options.docker,
        "flaskstack_version": __version__,
        "commands": readme_commands(package),
    }


def _environment() -> jinja2.Environment:
    # The templates are Python, TOML, YAML and Dockerfiles, not HTML: escaping
    # for HTML would corrupt them.
    return jinja2.Environment(  # nosec B701
        block_start_string="[%",
        block_end_string="%]",
        variable_start_string="[[",
        variable_end_string="]]",
        comment_start_string="[#",
        comment_end_string="#]",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # the output is source code, not HTML
    )


def _templates() -> Traversable:
    return importlib.resources.files("flaskstack.scaffold") / "templates" / "project"


def _walk(directory: Traversable, prefix: tuple[str, ...] = ()) -> t.Iterator[tuple[str, ...]]:
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _walk(entry, (*prefix, entry.name))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            yield (*prefix, entry.name)


def _render(root: Path, options: Options) -> None:
    context = _context(options)
    environment = _environment()
    skipped: set[str] = set()
    for feature, files in _FEATURE_FILES.items():
        if not getattr(options, feature):
            skipped |= files
    templates = _templates()
    for parts in _walk(templates):
        relative = "/".join(parts)
        if relative in skipped:
            continue
        node = templates
        for part in parts:
            node = node / part
        source = node.read_text(encoding="utf-8")
        text = environment.from_string(source).render(context)
        out_parts = [options.name if part == PACKAGE_PLACEHOLDER else part for part in parts]
        out_parts[-1] = out_parts[-1].removesuffix(TEMPLATE_SUFFIX)
        path = root.joinpath(*out_parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# `flask db init`, then `flask db migrate -m MESSAGE`, in one process: Flask's own CLI
# runs both, each loading the app from FLASK_APP as the flask command does.
_MIGRATE = """
import sys
from flask.cli import cli
for args in (["db", "init"], ["db", "migrate", "-m", sys.argv[1]]):
    cli.main(args=args, prog_name="flask", standalone_mode=False)
"""


def _first_migration(root: Path, package: str) -> None:
    """Run the new project's ``flask db init`` and ``flask db migrate``.

    In a separate process, so the project's models never enter this one; on a
    scratch SQLite database (flaskstack writes the migration portably, so it
    runs on PostgreSQL too).
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _READ_NAMES and not name.startswith(_READ_PREFIXES)
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["FLASK_APP"] = package
    env["FLASKSTACK_PROFILE"] = "development"
    # A scratch database and key: nothing of this run stays in the project.
    env["SECRET_KEY"] = secrets.token_urlsafe(48)
    command = [sys.executable, "-c", _MIGRATE, FIRST_MIGRATION_MESSAGE]
    with tempfile.TemporaryDirectory() as scratch:
        env["DATABASE_URL"] = f"sqlite:///{Path(scratch) / 'schema.sqlite3'}"
        try:
            result = subprocess.run(
                command, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ScaffoldError(
                f"Could not run `flask db migrate` for the first migration: {exc}"
            ) from exc
    if result.returncode != 0:
        output = "\n".join(filter(None, [result.stdout.strip(), result.stderr.strip()]))
        raise ScaffoldError(
            f"`flask db init` and `flask db migrate` failed while writing the first migration "
            f"(exit status {result.returncode}):\n{output}\nCheck that flaskstack and its "
            "dependencies are installed in this environment (python -m pip install flaskstack), "
            "then run flaskstack new again."
        )


def _remove_caches(root: Path) -> None:
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    instance = root / "instance"
    if instance.is_dir() and not any(instance.iterdir()):
        instance.rmdir()
