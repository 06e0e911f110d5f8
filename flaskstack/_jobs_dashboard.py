"""The jobs dashboard: the app's queues, workers, periodic and failed jobs, in the browser.

Off unless :setting:`FLASKSTACK_JOBS_DASHBOARD_PATH` names a path
(``"/admin/jobs"``); then blueprint ``flaskstack_jobs`` serves there. With
the path unset nothing is registered and this module is never imported
(:mod:`flaskstack.stack` imports it only when the path is set).

The rules it keeps:

- **For one role.** Every page and action needs a signed-in user who holds
  :setting:`FLASKSTACK_JOBS_DASHBOARD_ROLE` (``"admin"``): in flaskstack's
  roles (``FLASKSTACK_ROLES``), or by the user model's own
  ``has_role(name)``. ``init_app`` refuses the dashboard (``jobs.E004``)
  when neither can say, and with jobs off (``jobs.E003``). An anonymous
  visitor is answered as the account pages answer one (the sign-in page for
  browsers, 401 for JSON clients); a signed-in user without the role gets 403.
- **The app's jobs only.** Everything goes through :mod:`flaskstack._jobs_ops`,
  which reads the queues of the app's namespace; the id of another app's job
  is 404, exactly as an unknown id.
- **Changes are POSTs** with a CSRF token, as every unsafe request: requeue a
  failed job, requeue every failed job, delete a job. Each redirects back and
  says what it did in a flashed message.
- **Redis down** is a 503 page with ``Retry-After``
  (:exc:`~flaskstack.jobs.JobsUnavailable`), never a traceback.

The pages are rendered from ``templates/flaskstack/jobs/overview.html`` and
``job.html``, which extend ``flaskstack/base.html``; an app may override
them. Pages need no script or style of their own, so a strict
Content-Security-Policy applies unchanged; they depend on the signed-in user
and are sent ``private, no-store`` (:setting:`FLASKSTACK_PRIVATE_CACHE_CONTROL`).
"""

from __future__ import annotations

import datetime as dt
import typing as t

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import _jobs_ops
from ._routes import clashes_with_existing, own
from ._state import get_state
from .auth import _apps_own_manager, _model_for
from .auth._login import sign_in_first
from .auth._models import answers_roles
from .auth._roles import has_role
from .errors import ConfigError, Problem
from .jobs import JobsUnavailable
from .redis import RedisUnavailable

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from .config import Resolution

__all__ = ["RULES", "blueprint", "init_app"]

SETTING = "FLASKSTACK_JOBS_DASHBOARD_PATH"
ROLE_SETTING = "FLASKSTACK_JOBS_DASHBOARD_ROLE"

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("GET",)),
    ("/requeue-failed", ("POST",)),
    ("/<job_id>", ("GET",)),
    ("/<job_id>/requeue", ("POST",)),
    ("/<job_id>/delete", ("POST",)),
)
"""The dashboard's paths under :setting:`FLASKSTACK_JOBS_DASHBOARD_PATH` and their methods."""

_T = t.TypeVar("_T")

blueprint = Blueprint("flaskstack_jobs", __name__)


@blueprint.before_request
def _only_for_the_role() -> Response | None:
    """Anonymous: the sign-in answer; signed in without the role: 403."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    role = current_app.config[ROLE_SETTING]
    if not has_role(current_user, role):
        abort(
            403,
            description=(
                f"The jobs dashboard is for users with the {role!r} role, and your account "
                "does not have it. Ask an administrator if you need access."
            ),
        )
    return None


@blueprint.get("")
def overview() -> str:
    """Queues with their counts, workers, periodic jobs and the newest failed jobs."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return render_template(
        "flaskstack/jobs/overview.html",
        view=_redis(lambda: _jobs_ops.overview(app)),
        now=dt.datetime.now(dt.timezone.utc),
    )


@blueprint.get("/<job_id>")
def job(job_id: str) -> str:
    """One job: its call, status, times, the request that enqueued it and its traceback."""
    return render_template("flaskstack/jobs/job.html", job=_details(job_id))


@blueprint.post("/<job_id>/requeue")
def requeue(job_id: str) -> Response:
    """Put a failed job back at the end of its queue."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    status = _details(job_id)["status"]
    if status != "failed":
        flash(f"Job {job_id} is {status}, not failed: only failed jobs are requeued.", "error")
        return _back(job_id)
    try:
        _redis(lambda: _jobs_ops.requeue_jobs(app, [job_id]))
    except LookupError as exc:  # it changed meanwhile
        flash(f"Job {job_id} was not requeued: {_reason(exc)}.", "error")
    else:
        flash(f"Job {job_id} is back in its queue.", "success")
    return _back(job_id)


@blueprint.post("/requeue-failed")
def requeue_failed() -> Response:
    """Put every failed job of the app's queues back in its queue."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    done = _redis(lambda: _jobs_ops.requeue_jobs(app, all_failed=True))
    if done:
        jobs = "job is" if len(done) == 1 else "jobs are"
        flash(f"{len(done)} failed {jobs} back in their queues.", "success")
    else:
        flash("There were no failed jobs to requeue.", "info")
    return redirect(url_for(".overview"))


@blueprint.post("/<job_id>/delete")
def delete(job_id: str) -> Response:
    """Delete a job (from its queue or registry) with its result."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if _details(job_id)["status"] == "started":
        flash(f"Job {job_id} is running and was not deleted: stop its worker first.", "error")
        return _back(job_id)
    try:
        _redis(lambda: _jobs_ops.delete_jobs(app, [job_id]))
    except LookupError as exc:  # it changed meanwhile
        flash(f"Job {job_id} was not deleted: {_reason(exc)}.", "error")
        return _back(job_id)
    flash(f"Job {job_id} is deleted.", "success")
    return redirect(url_for(".overview"))


# Marked as flaskstack's, so a rule of the app's at the same URL is found
# (and refused) even when the app adds it after init_app.
for _view in (overview, job, requeue, requeue_failed, delete):
    own(_view, SETTING)


def _redis(action: t.Callable[[], _T]) -> _T:
    """``action()``; Redis unreachable is a 503 page with ``Retry-After``."""
    try:
        return action()
    except RedisUnavailable as exc:
        connection = get_state(current_app).redis
        backoff = connection.breaker.backoff if connection is not None else 1.0
        raise JobsUnavailable(backoff) from exc


def _details(job_id: str) -> dict[str, t.Any]:
    """What the job page shows; 404 for an unknown job and for another app's."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        details = _redis(lambda: _jobs_ops.job_details(app, job_id))
    except LookupError:
        abort(
            404,
            description=(
                f"There is no job {job_id!r} in this app's queues: it may have finished and "
                "expired, or been deleted. The dashboard lists the jobs that remain."
            ),
        )
    return details


def _reason(exc: LookupError) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def _back(job_id: str) -> Response:
    """Where the form was: the overview (``back=overview``) or the job's page."""
    if request.form.get("back") == "overview":
        return redirect(url_for(".overview"))
    return redirect(url_for(".job", job_id=job_id))


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse the dashboard with jobs off, a user model without roles, or a taken URL."""
    path = resolution[SETTING]
    if path is None:
        return []
    shown = repr(path)
    if not resolution["FLASKSTACK_JOBS"]:
        return [
            Problem(
                "jobs.E003",
                SETTING,
                f"{shown}, and FLASKSTACK_JOBS is off",
                "background jobs on, for the dashboard to show them",
                f"set FLASKSTACK_JOBS=true (with REDIS_URL), or unset {SETTING}",
            )
        ]
    problems = []
    if path.rstrip("/") == "":
        problems.append(
            Problem(
                "jobs.E005",
                SETTING,
                f"{shown}, the site's root",
                "a path below the root, such as '/admin/jobs'",
                f"set {SETTING} to a path of its own, such as '/admin/jobs'",
            )
        )
    problems.extend(_role_problems(app, resolution, shown))
    prefix = path.rstrip("/")
    if prefix:
        for rule, methods in RULES:
            problems.extend(clashes_with_existing(app, SETTING, prefix + rule, methods))
    return problems


def _role_problems(app: Flask, resolution: Resolution, shown: str) -> list[Problem]:
    """``jobs.E004`` unless the app's user model has a ``has_role(name)`` method."""
    try:
        model = _model_for(_apps_own_manager(app), resolution["FLASKSTACK_USER_MODEL"])
    except ConfigError:
        return []  # the user model's own problem is reported by auth
    if answers_roles(model, bool(resolution["FLASKSTACK_ROLES"])):
        return []
    if model is None:
        value = f"{shown}, and the app's own LoginManager names no user model"
        fix = (
            "set FLASKSTACK_USER_MODEL to the app's user model and set FLASKSTACK_ROLES = True "
            f"(or give the model a has_role(name) method), or unset {SETTING}"
        )
    else:
        name = f"{model.__module__}.{model.__qualname__}"
        value = f"{shown}, and the user model {name} cannot say which roles a user holds"
        fix = (
            "set FLASKSTACK_ROLES = True to use flaskstack's roles, or give "
            f"{name} a has_role(name) method, or unset {SETTING}"
        )
    return [
        Problem(
            "jobs.E004",
            SETTING,
            value,
            f"roles (FLASKSTACK_ROLES, or a user model with has_role(name)), to let only users "
            "with the role "
            f"{resolution[ROLE_SETTING]!r} (FLASKSTACK_JOBS_DASHBOARD_ROLE) in",
            fix,
        )
    ]


def init_app(app: Flask) -> None:
    """Register the dashboard at :setting:`FLASKSTACK_JOBS_DASHBOARD_PATH`."""
    app.register_blueprint(blueprint, url_prefix=app.config[SETTING].rstrip("/"))
