"""``flask stack worker`` and ``flask stack jobs``: run the job queues and look after them."""

from __future__ import annotations

import datetime as dt
import typing as t

import click

from ._parsers import NAMESPACE_RE

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["jobs_group", "worker_command"]


def _jobs_app() -> Flask:
    from ._cli_app import _app_or_exit
    from ._state import get_state

    app = _app_or_exit()
    if get_state(app).jobs is None:
        raise click.ClickException(
            "background jobs are off for this app: set FLASKSTACK_JOBS=true (with REDIS_URL)"
        )
    return app


def _queue_names(values: t.Sequence[str]) -> list[str]:
    for value in values:
        if not NAMESPACE_RE.fullmatch(value):
            raise click.BadParameter(
                f"{value!r} is not a queue name (letters, digits, '_', '.' or '-')",
                param_hint="QUEUES",
            )
    return list(values)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Run the jobs queued now, then stop.")
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not enqueue periodic or delayed jobs from this worker (another worker does).",
)
@click.option("--name", help="The worker's name in `flask stack jobs` (random by default).")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Stop after this many jobs.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes to run, each one job at a time.",
)
def worker_command(
    queues: tuple[str, ...],
    burst: bool,
    no_scheduler: bool,
    name: str | None,
    max_jobs: int | None,
    processes: int,
) -> None:
    """Run background jobs from QUEUES (default: FLASKSTACK_JOBS_QUEUES, in that order).

    Each worker process runs one job at a time, in a child process of its
    own; --processes N (or more workers: containers, machines) runs N at
    once. SIGTERM lets the jobs in flight finish for
    FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT seconds, then puts them back at the
    front of their queue for another worker.
    """
    names = _queue_names(queues)
    app = _jobs_app()
    from ._jobs_worker import run_workers

    run_workers(
        app,
        processes,
        names,
        burst=burst,
        scheduler=not no_scheduler,
        name=name,
        max_jobs=max_jobs,
    )


@click.group("jobs", invoke_without_command=True)
@click.pass_context
def jobs_group(ctx: click.Context) -> None:
    """Queues, workers, periodic jobs and failed jobs (sub-commands act on jobs)."""
    if ctx.invoked_subcommand is not None:
        return
    from . import _jobs_ops

    app = _jobs_app()
    with app.app_context():
        view = _redis_or_exit(lambda: _jobs_ops.overview(app))
    now = dt.datetime.now(dt.timezone.utc)
    click.echo(f"Queues (namespace {view.namespace}):")
    _table(
        ["QUEUE", "QUEUED", "STARTED", "SCHEDULED", "FAILED", "FINISHED"],
        [[q.name, q.queued, q.started, q.scheduled, q.failed, q.finished] for q in view.queues],
    )
    click.echo("\nWorkers:")
    if view.workers:
        _table(
            ["NAME", "STATE", "QUEUES", "HOST", "PID", "JOB", "HEARTBEAT", "OK", "FAILED"],
            [
                [
                    w.name,
                    w.state,
                    ",".join(w.queues),
                    w.hostname,
                    w.pid or "-",
                    w.current_job or "-",
                    _ago(w.last_heartbeat, now),
                    w.successful,
                    w.failed,
                ]
                for w in view.workers
            ],
        )
    else:
        click.echo("  none seen: start one with `flask stack worker`")
    click.echo("\nPeriodic jobs:")
    if view.periodic:
        _table(
            ["NAME", "SCHEDULE", "QUEUE", "NEXT RUN (UTC)", "LAST RUN"],
            [
                [
                    p.name,
                    p.schedule,
                    p.queue,
                    p.next_run.strftime("%Y-%m-%d %H:%M:%S"),
                    p.last_run or "never",
                ]
                for p in view.periodic
            ],
        )
    else:
        click.echo("  none declared")
    click.echo("\nFailed jobs (newest first):")
    if view.failed:
        _table(
            ["ID", "QUEUE", "FUNCTION", "FAILED", "ERROR"],
            [[f.id, f.queue, f.function, _ago(f.ended_at, now), f.error_line] for f in view.failed],
        )
        click.echo(
            "  `flask stack jobs show ID` prints the traceback; "
            "`flask stack jobs requeue ID` runs the job again."
        )
    else:
        click.echo("  none")


@jobs_group.command("show")
@click.argument("job_id")
def _show_command(job_id: str) -> None:
    """Print one job: its call, status, times, request id and traceback."""
    from . import _jobs_ops

    app = _jobs_app()
    with app.app_context():
        details = _redis_or_exit(lambda: _lookup(lambda: _jobs_ops.job_details(app, job_id)))
    for key, value in details.items():
        if key != "error":
            click.echo(f"{key}: {'-' if value is None else value}")
    if details["error"]:
        click.echo("error:")
        click.echo(details["error"].rstrip())


@jobs_group.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Requeue every failed job of the app's queues.")
def _requeue_command(job_ids: tuple[str, ...], all_failed: bool) -> None:
    """Run failed jobs JOB_IDS again (put them back at the end of their queue)."""
    from . import _jobs_ops

    if not job_ids and not all_failed:
        raise click.UsageError("name the jobs to requeue, or pass --all-failed")
    app = _jobs_app()
    with app.app_context():
        done = _redis_or_exit(
            lambda: _lookup(lambda: _jobs_ops.requeue_jobs(app, job_ids, all_failed=all_failed))
        )
    click.echo(f"Requeued {len(done)} job(s)." + "".join(f"\n  {job_id}" for job_id in done))


@jobs_group.command("delete")
@click.argument("job_ids", nargs=-1, required=True)
def _delete_command(job_ids: tuple[str, ...]) -> None:
    """Delete jobs JOB_IDS (queued, scheduled, failed or finished) with their results."""
    from . import _jobs_ops

    app = _jobs_app()
    with app.app_context():
        done = _redis_or_exit(lambda: _lookup(lambda: _jobs_ops.delete_jobs(app, job_ids)))
    click.echo(f"Deleted {len(done)} job(s).")


_T = t.TypeVar("_T")


def _lookup(action: t.Callable[[], _T]) -> _T:
    try:
        return action()
    except LookupError as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None


def _redis_or_exit(action: t.Callable[[], _T]) -> _T:
    from .redis import RedisUnavailable

    try:
        return action()
    except RedisUnavailable as exc:
        raise click.ClickException(f"{exc}; check REDIS_URL and that Redis is up") from None


def _ago(when: dt.datetime | None, now: dt.datetime) -> str:
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _table(header: list[str], rows: list[list[t.Any]]) -> None:
    cells = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo(
            "  "
            + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
