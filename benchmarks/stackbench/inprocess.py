"""Time and profile one endpoint of one app inside one process (no HTTP, no gunicorn).

Run by ``benchmarks/run.py --profile`` in a fresh process with the apps'
environment::

    python -m stackbench.inprocess '<json spec>'

With ``--count N`` instead, it sends the warm-up requests and then ``N`` more,
and prints nothing: ``benchmarks/run.py`` runs it under valgrind's callgrind
with ``N`` and with 0, and the difference of the two instruction counts
divided by ``N`` is the instructions of one request (start-up, app creation and
warm-up excluded).

It creates the app, sends it WSGI requests built like the load generator's
(same headers, cookie and body), against the harness's PostgreSQL and Redis,
and prints one JSON object: microseconds per request (wall and CPU, without
the profiler), and where a CPU-time pyinstrument profile of the same requests
puts the time: the call tree, the functions with the most self time, and the
inclusive time of each function of one package (flaskstack).
"""

from __future__ import annotations

import json
import os
import sys
import time
import typing as t

from werkzeug.test import EnvironBuilder

if t.TYPE_CHECKING:
    from pyinstrument.frame import Frame


def _environ(spec: dict[str, t.Any]) -> dict[str, t.Any]:
    builder = EnvironBuilder(
        path=spec["path"],
        method=spec["method"],
        headers=spec["headers"],
        data=spec["body"],
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


def _call(app: t.Any, environ: dict[str, t.Any], spec: dict[str, t.Any]) -> None:
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if not statuses[0].startswith(str(spec["expect"])):
        raise SystemExit(f"{spec['name']}: expected {spec['expect']}, got {statuses[0]}")


def _where(frame: Frame) -> str:
    path = frame.file_path or "?"
    for marker in ("site-packages" + os.sep, "benchmarks" + os.sep + "apps" + os.sep):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        root = os.getcwd()
        if path.startswith(root):
            path = os.path.relpath(path, root)
    if os.sep + "flaskstack" + os.sep in path and "site-packages" not in path:
        path = "flaskstack" + path.rsplit(os.sep + "flaskstack", 1)[1]
    return f"{path}:{frame.line_no} {frame.function}"


def _package(where: str) -> str:
    """The top-level package (or stdlib module) of a ``path:line function`` location."""
    path = where.split(":", 1)[0]
    if path.startswith("<"):
        return "builtins"
    if os.sep + "lib" + os.sep + "python" in path:
        return "stdlib"
    return path.split("/", 1)[0].removesuffix(".py")


def _walk(frame: Frame, seen: tuple[str, ...], focus: str, found: dict[str, t.Any]) -> None:
    if frame.is_synthetic:  # "[self]" and similar: already in their parent's self time
        return
    where = _where(frame)
    found["self"][where] = found["self"].get(where, 0.0) + frame.total_self_time
    package = _package(where)
    found["packages"][package] = found["packages"].get(package, 0.0) + frame.total_self_time
    if where.startswith(focus + "/") and where not in seen:
        found["inclusive"][where] = found["inclusive"].get(where, 0.0) + frame.time
        seen = (*seen, where)
    for child in frame.children:
        _walk(child, seen, focus, found)


WARMUP_REQUESTS = 200
"""Requests sent before any measure: caches filled, every code path imported and compiled."""


def count(spec: dict[str, t.Any], requests: int) -> None:
    """Create the app, warm it up, then send ``requests`` requests (run under callgrind)."""
    namespace: dict[str, t.Any] = {}
    exec(spec["create"], namespace)
    app = namespace["app"]
    for _ in range(WARMUP_REQUESTS):
        _call(app, _environ(spec), spec)
    environs = [_environ(spec) for _ in range(requests)]
    for environ in environs:
        _call(app, environ, spec)


def main() -> int:
    if sys.argv[1] == "--count":
        count(json.loads(sys.argv[3]), int(sys.argv[2]))
        return 0
    from pyinstrument import Profiler
    from pyinstrument.stack_sampler import get_stack_sampler

    spec = json.loads(sys.argv[1])
    namespace: dict[str, t.Any] = {}
    exec(spec["create"], namespace)
    app = namespace["app"]
    requests = int(spec["requests"])
    for _ in range(min(WARMUP_REQUESTS, requests)):
        _call(app, _environ(spec), spec)

    environs = [_environ(spec) for _ in range(requests)]
    wall, cpu = time.perf_counter(), time.process_time()
    for environ in environs:
        _call(app, environ, spec)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    # Sample CPU time, not wall time: under load every core is busy, so what
    # limits throughput is CPU; waits for PostgreSQL and Redis are not in it.
    get_stack_sampler().timer_func = time.process_time
    environs = [_environ(spec) for _ in range(requests)]
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for environ in environs:
        _call(app, environ, spec)
    session = profiler.stop()

    found: dict[str, t.Any] = {"self": {}, "inclusive": {}, "packages": {}}
    root = session.root_frame(trim_stem=False)
    total = root.time if root is not None else 0.0
    if root is not None:
        _walk(root, (), spec["package"], found)

    def top(values: dict[str, float], count: int) -> list[tuple[str, float]]:
        ranked = sorted(values.items(), key=lambda item: -item[1])[:count]
        return [(where, round(100 * seconds / total, 1)) for where, seconds in ranked]

    print(
        json.dumps(
            {
                "requests": requests,
                "wall_us_per_request": round(wall / requests * 1e6, 1),
                "cpu_us_per_request": round(cpu / requests * 1e6, 1),
                "profiled_cpu_us_per_request": round(total / requests * 1e6, 1),
                "package_self_percent": top(found["packages"], 15),
                "self_percent": top(found["self"], 30),
                "package_inclusive_percent": top(found["inclusive"], 40),
                "tree": profiler.output_text(
                    unicode=True,
                    color=False,
                    show_all=False,
                ),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
