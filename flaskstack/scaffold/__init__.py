"""The ``flaskstack`` console script: ``flaskstack new NAME`` starts a project.

A new project is a Python package with an app factory calling
:func:`flaskstack.init_app`, its own user model with roles, two-factor
sign-in and passkeys on (identity providers are shown, commented out, in
``.env.example``), a page, a page only a role may use, an example REST
resource (``--no-api`` leaves it out), a background job the page enqueues
(``flaskstack.jobs``; run inline while ``FLASKSTACK_JOBS`` is off), its
migration repository with the first migration already written, tests that
use flaskstack's pytest plugin,
a README whose commands work as written, a ``.gitignore``, and a
``Dockerfile``, ``docker-compose.yml`` (with a worker for the jobs),
``.env.example``, ``.dockerignore`` and Kubernetes manifests (a Kustomize
base and an example overlay in ``deploy/kubernetes/``) to deploy it (``--no-docker`` leaves
them out). Its tests pass straight away; those of the background job run
when ``REDIS_URL`` names a Redis.

In the project, ``python -m pip install -e '.[test]'``, then
``flask --app NAME db upgrade`` creates the tables; there is no
``flask db init`` to run. Everything else an app needs is under ``flask``:
``flask stack ...`` and ``flask db ...``. This package only creates
projects; the generator runs the new project's ``flask db init`` and
``flask db migrate`` in a separate process, so the project's models never
enter this one.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import click

from ._project import FIRST_MIGRATION_MESSAGE, Options, ScaffoldError, generate, readme_commands

if t.TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["cli", "main"]


def _version() -> str:
    from flaskstack import __version__

    return __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="flaskstack")
def cli() -> None:
    """flaskstack's command line: `flaskstack new NAME` starts a project.

    Inside a project, use `flask stack ...` (checks, settings, users, tokens)
    and `flask db ...` (migrations).
    """


@cli.command("new")
@click.argument("name")
@click.option(
    "-d",
    "--directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to create the project (default: ./NAME). It must not exist or be empty.",
)
@click.option(
    "--api/--no-api",
    default=True,
    show_default=True,
    help="Include the example REST resource under /api and its tests.",
)
@click.option(
    "--docker/--no-docker",
    default=True,
    show_default=True,
    help=(
        "Include a Dockerfile, docker-compose.yml, .env.example, .dockerignore and "
        "Kubernetes manifests (deploy/kubernetes/)."
    ),
)
def _new(name: str, directory: Path | None, api: bool, docker: bool) -> None:
    """Create the project NAME: a package of that name and everything around it.

    NAME is also the Python package, so it is lower-case letters, digits and
    underscores, starting with a letter.
    """
    target = directory if directory is not None else Path(name)
    try:
        files = generate(Options(name=name, target=target, api=api, docker=docker))
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from exc
    parts = [
        (
            f"{name}/",
            "the app: factory, models, pages" + (", the API" if api else "") + ", a job",
        ),
        ("migrations/", f"the first migration ({FIRST_MIGRATION_MESSAGE})"),
        ("tests/", "pytest, with flaskstack's fixtures"),
    ]
    if docker:
        parts.append(("Dockerfile, docker-compose.yml", "deployment; settings in .env.example"))
        parts.append(("deploy/kubernetes/", "Kubernetes manifests (Kustomize)"))
    click.echo(f"Created project {name!r} in {target.absolute()} ({len(files)} files):")
    _table(parts)
    click.echo("\nNext, in a virtual environment:")
    _table([(f"cd {target}", ""), *readme_commands(name)])


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(left) for left, _ in rows)
    for left, right in rows:
        click.echo(f"  {left:<{width}}   # {right}" if right else f"  {left}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``flaskstack`` command (the console script's entry point)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="flaskstack")
