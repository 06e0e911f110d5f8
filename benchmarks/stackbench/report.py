"""Turning measurements into ``stack.json``, ``stack.md`` and ``stack.rst``, and the targets."""

from __future__ import annotations

import statistics
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    import argparse
    import datetime as dt

__all__ = ["assemble", "markdown", "rst", "write_profiles"]

BASE = "flaskstack"
HAND = "hand-wired"
DJANGO = "django"
# The same apps under gthread workers (stackbench.apps.THREADED_APPS).
THREADED = {BASE: "flaskstack-threads", DJANGO: "django-threads"}
# The flaskstack app with rate limits on (stackbench.apps.LIMITED_APP).
LIMITED_APP = "flaskstack-limits"
# The flaskstack app with strong authentication configured (stackbench.apps.STRONG_AUTH_APP).
STRONG_AUTH_APP = "flaskstack-auth"
# Configured but unused, a feature costs nothing: the app's CPU per request within the
# run's noise (CPU per request hardly depends on the machine's load; throughput does).
UNUSED_FEATURE_CEILING = 1.05
# The flaskstack app with Prometheus metrics on (stackbench.apps.METRICS_APP), and the
# throughput it keeps on the anonymous page, at least, ÷ flaskstack's (issue #21).
METRICS_APP = "flaskstack-metrics"
METRICS_FLOOR = 0.95

# flaskstack's Redis commands per request, exactly (issue #9). Behind a rate limit:
# the counting script (EVALSHA, and the INCRBY it runs), then TTL and GET for the
# RateLimit-* headers: four in INFO commandstats, three round trips.
REDIS_TARGETS = {
    "page": 0,
    "page_cookie": 0,
    "me": 1,
    "cached": 1,
    "api_read": 0,
    "api_limited": 4,
}
# flaskstack ÷ hand-wired throughput, at least; 1.0 where not listed.
THROUGHPUT_TARGETS = {"me": 1.5}
BARE_FLOOR = 0.8
STARTUP_TARGET = 0.8


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(a / b, 2)


def assemble(
    args: argparse.Namespace,
    started: dt.datetime,
    measured: dict[str, t.Any],
    plugin: dict[str, t.Any] | None,
    argv: list[str],
) -> dict[str, t.Any]:
    apps = [app.key for app in args.app_specs]
    endpoints: dict[str, t.Any] = {}
    for endpoint in args.endpoint_specs:
        per_app = {}
        for app in apps:
            if not endpoint.served_by(app):
                continue
            runs = measured["runs"][endpoint.key][app]
            per_app[app] = {
                "rps_median": _median([run["rps"] for run in runs]),
                "p50_ms_median": _median([run["p50_ms"] for run in runs]),
                "p99_ms_median": _median([run["p99_ms"] for run in runs]),
                "errors": sum(run["errors"] for run in runs),
                "cpu_ms_per_request_median": {
                    part: _median([run["cpu_ms_per_request"][part] for run in runs])
                    for part in ("total", "app", "postgres", "redis")
                },
                **measured["counts"][endpoint.key][app],
                "runs": runs,
            }
            counted = measured.get("instructions", {}).get(endpoint.key, {}).get(app)
            if counted is not None:
                per_app[app]["instructions_per_request"] = counted
        ratios = {}
        if BASE in per_app:
            for other in apps:
                if other == BASE or other not in per_app:
                    continue
                ratios[f"{BASE}/{other}"] = _ratio(
                    per_app[BASE]["rps_median"], per_app[other]["rps_median"]
                )
                ratios[f"{BASE}/{other} by round"] = [
                    _ratio(mine["rps"], theirs["rps"])
                    for mine, theirs in zip(
                        per_app[BASE]["runs"], per_app[other]["runs"], strict=True
                    )
                ]
            mine = per_app[BASE].get("instructions_per_request")
            for other in apps:
                theirs = per_app.get(other, {}).get("instructions_per_request")
                if other != BASE and mine is not None and theirs is not None:
                    # Higher is better, as for throughput: the other app's instructions
                    # for one request over flaskstack's.
                    ratios[f"{BASE}/{other} instructions"] = _ratio(theirs, mine)
        for sync_app, threaded_app in ((BASE, THREADED[BASE]), (DJANGO, THREADED[DJANGO])):
            if sync_app in per_app and threaded_app in per_app:
                ratios[f"{threaded_app}/{sync_app}"] = _ratio(
                    per_app[threaded_app]["rps_median"], per_app[sync_app]["rps_median"]
                )
        if THREADED[BASE] in per_app and THREADED[DJANGO] in per_app:
            ratios[f"{THREADED[BASE]}/{THREADED[DJANGO]}"] = _ratio(
                per_app[THREADED[BASE]]["rps_median"], per_app[THREADED[DJANGO]]["rps_median"]
            )
        unlimited = endpoints.get(endpoint.unlimited or "", {}).get("apps", {}).get(BASE)
        if LIMITED_APP in per_app and unlimited is not None:
            limited = per_app[LIMITED_APP]
            ratios["limited/unlimited"] = _ratio(limited["rps_median"], unlimited["rps_median"])
            ratios["limited/unlimited by round"] = [
                _ratio(mine["rps"], theirs["rps"])
                for mine, theirs in zip(limited["runs"], unlimited["runs"], strict=True)
            ]
        endpoints[endpoint.key] = {
            "label": endpoint.label,
            "request": f"{endpoint.method} {endpoint.path}",
            "auth": endpoint.auth,
            "expected_status": endpoint.expect,
            "apps": per_app,
            "ratios": ratios,
        }
        if endpoint.unlimited is not None:
            endpoints[endpoint.key]["unlimited"] = endpoint.unlimited

    apps_section = {
        app.key: {
            "description": app.description,
            "gunicorn": app.target,
            "startup": measured["startup"].get(app.key),
            "memory": measured["memory"].get(app.key),
        }
        for app in args.app_specs
    }
    results: dict[str, t.Any] = {
        "schema": 1,
        "date": started.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "command": "python benchmarks/run.py " + " ".join(argv),
        "environment": measured["facts"],
        "settings": {
            "gunicorn": f"{args.workers} sync workers"
            + "".join(
                f"; {app.key}: {args.workers} gthread workers of {app.threads} threads"
                for app in args.app_specs
                if app.threads > 1
            ),
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "order": "apps take turns per endpoint; the first app rotates every round",
            "count_requests": args.count_requests,
            "instructions_requests": args.instructions,
            "startup_samples": args.startup_samples,
            "postgresql": "own cluster, synchronous_commit=off; statements counted from its log",
        },
        "seed": measured["seed"],
        "apps": apps_section,
        "endpoints": endpoints,
        "plugin_benchmark": _plugin_summary(plugin),
    }
    results["targets"] = targets(results)
    return results


def _plugin_summary(plugin: dict[str, t.Any] | None) -> dict[str, t.Any] | None:
    if plugin is None:
        return None
    return {
        "date": plugin.get("date"),
        "tests": plugin.get("tests"),
        "results": "benchmarks/results/plugin.md",
        "create_all_over_plugin_wall": {
            name: backend.get("ratio_wall") for name, backend in plugin.get("backends", {}).items()
        },
        "per_test_ms": {
            name: {
                variant: backend[variant]["ms_per_test"]
                for variant in ("plugin", "create_all")
                if variant in backend
            }
            for name, backend in plugin.get("backends", {}).items()
        },
    }


def targets(results: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """Each target of issue #9: what is wanted, what was measured, whether it is met."""
    found: list[dict[str, t.Any]] = []
    endpoints = results["endpoints"]
    for key, endpoint in endpoints.items():
        ratio = endpoint["ratios"].get(f"{BASE}/{HAND}")
        if ratio is not None:
            wanted = THROUGHPUT_TARGETS.get(key, 1.0)
            found.append(
                {
                    "target": f"throughput ÷ hand-wired, {endpoint['label']}",
                    "wanted": f">= {wanted}",
                    "measured": ratio,
                    "met": ratio >= wanted,
                }
            )
    for endpoint in endpoints.values():
        ratio = endpoint["ratios"].get(f"{BASE}/bare")
        if ratio is not None:
            found.append(
                {
                    "target": f"throughput ÷ bare, {endpoint['label']}",
                    "wanted": f">= {BARE_FLOOR}",
                    "measured": ratio,
                    "met": ratio >= BARE_FLOOR,
                }
            )
    for key, wanted in REDIS_TARGETS.items():
        served = endpoints.get(key, {}).get("apps", {})
        app = next((app for app in (BASE, LIMITED_APP) if app in served), None)
        if app is not None:
            measured = served[app]["redis_per_request"]
            found.append(
                {
                    "target": f"Redis commands per request, {endpoints[key]['label']}",
                    "wanted": f"== {wanted}",
                    "measured": measured,
                    "met": measured == wanted,
                }
            )
    for endpoint in endpoints.values():
        served = endpoint["apps"]
        if BASE not in served or STRONG_AUTH_APP not in served:
            continue
        mine, theirs = served[STRONG_AUTH_APP], served[BASE]
        for what, field in (
            ("Redis commands", "redis_per_request"),
            ("SQL statements", "sql_per_request"),
        ):
            found.append(
                {
                    "target": f"{what} per request with strong auth configured, unused, "
                    f"{endpoint['label']}",
                    "wanted": f"== {_count(theirs[field])} (flaskstack)",
                    "measured": mine[field],
                    "met": mine[field] == theirs[field],
                }
            )
        ratio = _ratio(
            mine["cpu_ms_per_request_median"]["app"], theirs["cpu_ms_per_request_median"]["app"]
        )
        found.append(
            {
                "target": f"app CPU per request with strong auth configured, unused ÷ "
                f"flaskstack, {endpoint['label']}",
                "wanted": f"<= {UNUSED_FEATURE_CEILING}",
                "measured": ratio,
                "met": ratio is not None and ratio <= UNUSED_FEATURE_CEILING,
            }
        )
    for key, endpoint in endpoints.items():
        served = endpoint["apps"]
        if BASE not in served or METRICS_APP not in served:
            continue
        mine, theirs = served[METRICS_APP], served[BASE]
        for what, field in (
            ("Redis commands", "redis_per_request"),
            ("SQL statements", "sql_per_request"),
        ):
            found.append(
                {
                    "target": f"{what} per request with metrics on, {endpoint['label']}",
                    "wanted": f"== {_count(theirs[field])} (flaskstack)",
                    "measured": mine[field],
                    "met": mine[field] == theirs[field],
                }
            )
        if key == "page":
            ratio = _ratio(mine["rps_median"], theirs["rps_median"])
            found.append(
                {
                    "target": f"throughput with metrics on ÷ flaskstack, {endpoint['label']}",
                    "wanted": f">= {METRICS_FLOOR}",
                    "measured": ratio,
                    "met": ratio is not None and ratio >= METRICS_FLOOR,
                }
            )
    apps = results["apps"]
    if BASE in apps and HAND in apps:
        for unit, field in (("", "create_ms_median"), (", instructions", "create_instructions")):
            ratio = _ratio(apps[BASE]["startup"].get(field), apps[HAND]["startup"].get(field))
            if ratio is None and field == "create_instructions":
                continue  # not counted (--instructions 0)
            found.append(
                {
                    "target": f"import + create_app ÷ hand-wired{unit}",
                    "wanted": f"<= {STARTUP_TARGET}",
                    "measured": ratio,
                    "met": ratio is not None and ratio <= STARTUP_TARGET,
                }
            )
        mine = apps[BASE]["memory"]["worker_rss_mib_median"]
        theirs = apps[HAND]["memory"]["worker_rss_mib_median"]
        found.append(
            {
                "target": "worker RSS ÷ hand-wired",
                "wanted": "<= 1.0",
                "measured": _ratio(mine, theirs),
                "met": mine is not None and theirs is not None and mine <= theirs,
            }
        )
    return found


# -- rendering ---------------------------------------------------------------------


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _count(value: float) -> str:
    return f"{value:g}"


def _tables(results: dict[str, t.Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables as (title, header, rows)."""
    apps = list(results["apps"])
    others = [app for app in apps if app != BASE] if BASE in apps else []
    endpoints = results["endpoints"]
    rounds = results["settings"]["rounds"]

    throughput = []
    for endpoint in endpoints.values():
        cells = [endpoint["label"]]
        cells += [
            _number(endpoint["apps"][app]["rps_median"]) if app in endpoint["apps"] else "-"
            for app in apps
        ]
        cells += [_number(endpoint["ratios"].get(f"{BASE}/{o}"), 2) for o in others]
        throughput.append(cells)

    latency = []
    for endpoint in endpoints.values():
        cells = [endpoint["label"]]
        for app in apps:
            data = endpoint["apps"].get(app)
            if data is None:
                cells.append("-")
                continue
            cells.append(f"{data['p50_ms_median']:.1f} / {data['p99_ms_median']:.1f}")
        latency.append(cells)

    cpu = []
    for endpoint in endpoints.values():
        cells = [endpoint["label"]]
        for app in apps:
            if app not in endpoint["apps"]:
                cells.append("-")
                continue
            used = endpoint["apps"][app]["cpu_ms_per_request_median"]
            cells.append(
                f"{used['total']:.2f} ({used['app']:.2f} + {used['postgres']:.2f} + "
                f"{used['redis']:.2f})"
            )
        cpu.append(cells)

    counts = []
    for endpoint in endpoints.values():
        cells = [endpoint["label"]]
        for app in apps:
            data = endpoint["apps"].get(app)
            if data is None:
                cells.append("-")
                continue
            cells.append(f"{_count(data['redis_per_request'])} / {_count(data['sql_per_request'])}")
        counts.append(cells)

    instructions = []
    for endpoint in endpoints.values():
        if not any("instructions_per_request" in data for data in endpoint["apps"].values()):
            continue
        cells = [endpoint["label"]]
        cells += [
            _number(endpoint["apps"].get(app, {}).get("instructions_per_request")) for app in apps
        ]
        cells += [_number(endpoint["ratios"].get(f"{BASE}/{o} instructions"), 2) for o in others]
        instructions.append(cells)

    limited = []
    for endpoint in endpoints.values():
        unlimited = endpoints.get(endpoint.get("unlimited") or "")
        mine = endpoint["apps"].get(LIMITED_APP)
        if unlimited is None or mine is None or BASE not in unlimited["apps"]:
            continue
        limited.append(
            [
                endpoint["label"],
                _number(mine["rps_median"]),
                _number(unlimited["apps"][BASE]["rps_median"]),
                _number(endpoint["ratios"].get("limited/unlimited"), 2),
                f"{_count(mine['redis_per_request'])} "
                f"({_count(unlimited['apps'][BASE]['redis_per_request'])} without)",
            ]
        )

    workers = []
    for endpoint in endpoints.values():
        served = endpoint["apps"]
        if not all(app in served for app in (BASE, DJANGO, *THREADED.values())):
            continue
        ratios = endpoint["ratios"]
        workers.append(
            [
                endpoint["label"],
                *(
                    _number(served[app]["rps_median"])
                    for app in (BASE, THREADED[BASE], DJANGO, THREADED[DJANGO])
                ),
                _number(ratios.get(f"{BASE}/{DJANGO}"), 2),
                _number(ratios.get(f"{THREADED[BASE]}/{THREADED[DJANGO]}"), 2),
                _number(ratios.get(f"{THREADED[BASE]}/{BASE}"), 2),
                _number(ratios.get(f"{THREADED[DJANGO]}/{DJANGO}"), 2),
            ]
        )

    startup_rows = []
    app_data = results["apps"]
    ratio_to_hand = HAND in apps and BASE in apps
    for title, section, field, digits in (
        ("import + create_app (ms)", "startup", "create_ms_median", 0),
        ("import + create_app (instructions)", "startup", "create_instructions", 0),
        ("first request after start (ms)", "startup", "first_request_ms_median", 0),
        ("modules loaded", "startup", "modules", 0),
        ("worker RSS (MiB)", "memory", "worker_rss_mib_median", 1),
        ("worker PSS (MiB)", "memory", "worker_pss_mib_median", 1),
    ):
        values = [(app_data[app][section] or {}).get(field) for app in apps]
        if all(value is None for value in values):
            continue  # not measured in this run
        cells = [title, *(_number(v, digits) for v in values)]
        if ratio_to_hand:
            cells.append(_number(_ratio(values[apps.index(BASE)], values[apps.index(HAND)]), 2))
        startup_rows.append(cells)

    target_rows = [
        [
            target["target"],
            target["wanted"],
            _count(target["measured"]) if target["measured"] is not None else "-",
            "yes" if target["met"] else "**no**",
        ]
        for target in results["targets"]
    ]
    return [
        (
            f"Throughput (requests/s, median of {rounds} round{'s' * (rounds != 1)})",
            ["endpoint", *apps, *(f"{BASE} ÷ {o}" for o in others)],
            throughput,
        ),
        ("Latency, p50 / p99 (ms, medians)", ["endpoint", *apps], latency),
        (
            "CPU per request, ms: total (app workers + PostgreSQL + Redis), medians",
            ["endpoint", *apps],
            cpu,
        ),
        ("Redis commands / SQL statements per request", ["endpoint", *apps], counts),
        *(
            [
                (
                    "CPU instructions per request, in-process (callgrind); ratio: the other "
                    f"app's instructions ÷ {BASE}'s (above 1: {BASE} does less)",
                    ["endpoint", *apps, *(f"{o} ÷ {BASE}" for o in others)],
                    instructions,
                )
            ]
            if instructions
            else []
        ),
        *(
            [
                (
                    f"Rate limits: {BASE} behind a limit ÷ the same endpoint without",
                    [
                        "endpoint",
                        "limited (req/s)",
                        "unlimited (req/s)",
                        "limited ÷ unlimited",
                        "Redis commands per request",
                    ],
                    limited,
                )
            ]
            if limited
            else []
        ),
        *(
            [
                (
                    "Worker model: sync and gthread workers (requests/s; same worker count)",
                    [
                        "endpoint",
                        f"{BASE} sync",
                        f"{BASE} threaded",
                        f"{DJANGO} sync",
                        f"{DJANGO} threaded",
                        f"{BASE} ÷ {DJANGO}, sync",
                        f"{BASE} ÷ {DJANGO}, threaded",
                        f"threaded ÷ sync, {BASE}",
                        f"threaded ÷ sync, {DJANGO}",
                    ],
                    workers,
                )
            ]
            if workers
            else []
        ),
        (
            "Start-up and memory (medians)",
            ["", *apps, *([f"{BASE} ÷ {HAND}"] if ratio_to_hand else [])],
            startup_rows,
        ),
        ("Targets (issue #9)", ["target", "wanted", "measured", "met"], target_rows),
    ]


def _intro(results: dict[str, t.Any]) -> list[str]:
    env, settings = results["environment"], results["settings"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    return [
        f"Generated by `{results['command'].strip()}` ({results['mode']} mode) on "
        f"{results['date']}, flaskstack at {env['git_commit']}: Python {env['python']}, "
        f"{env['machine']}, PostgreSQL {env['postgresql']}, Redis {env['redis_server']}, "
        f"load from {env['load_generator']}.",
        "",
        f"Every app runs under gunicorn with {settings['gunicorn']} on loopback, against the "
        f"same PostgreSQL database ({results['seed']['users']} users, "
        f"{results['seed']['notes']} notes) and the same Redis, both owned by the harness. "
        f"Each load run keeps {settings['connections']} connections busy for "
        f"{settings['duration_s']:g} s after {settings['warmup_s']:g} s of warm-up; the apps "
        f"take turns on each endpoint, {settings['rounds']} round(s). CPU per request is what "
        "the app's workers, the PostgreSQL server and Redis used during a run (from `/proc`), "
        "divided by its requests: unlike requests/s it hardly depends on what else the "
        "machine is doing. Redis commands "
        f"(`INFO commandstats`) and SQL statements (the server's statement log: `BEGIN`, "
        f"`ROLLBACK` and the empty `;` of a connection ping count) are per request, over "
        f"{settings['count_requests']} requests. Versions: {versions}.",
    ] + (
        [
            "",
            "**Experiment**: the flaskstack app ran with "
            f"`STACKBENCH_FLASKSTACK_CONFIG={env['flaskstack_config_override']}`.",
        ]
        if env.get("flaskstack_config_override")
        else []
    )


def markdown(results: dict[str, t.Any]) -> str:
    lines = ["# flaskstack vs. hand-wired, bare Flask and Django", "", *_intro(results)]
    for title, header, rows in _tables(results):
        lines += ["", f"## {title}", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *_plugin_lines(results, code="`")]
    return "\n".join(lines) + "\n"


def _plugin_lines(results: dict[str, t.Any], code: str) -> list[str]:
    plugin = results.get("plugin_benchmark")
    if not plugin:
        return []
    parts = []
    for name, ratio in plugin["create_all_over_plugin_wall"].items():
        per_test = plugin["per_test_ms"].get(name, {})
        parts.append(
            f"{name}: {per_test.get('plugin')} ms per test with the plugin against "
            f"{per_test.get('create_all')} ms with create_all/drop_all ({ratio}x the wall time)"
        )
    return [
        f"pytest plugin ({code}benchmarks/plugin_vs_create_all.py{code}, {plugin['tests']} "
        f"tests, {plugin['date']}): " + "; ".join(parts) + ". Details in "
        f"{code}benchmarks/results/plugin.md{code}."
    ]


def rst(results: dict[str, t.Any]) -> str:
    """The same tables for Sphinx (``docs/benchmarks.rst`` includes this file)."""
    intro = [line.replace("`", "``") for line in _intro(results)]
    lines = [*intro]
    for title, header, rows in _tables(results):
        lines += ["", f".. list-table:: {title}", "    :header-rows: 1", ""]
        for row in [header, *rows]:
            cells = [cell.replace("**", "") or " " for cell in row]
            lines.append(f"    * - {cells[0]}")
            lines += [f"      - {cell}" for cell in cells[1:]]
    lines += ["", *_plugin_lines(results, code="``")]
    return "\n".join(lines) + "\n"


def write_profiles(folder: Path, profiles: list[dict[str, t.Any]]) -> None:
    """One text file per profiled endpoint, and ``summary.md`` comparing them."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = [
        "# In-process timings and profiles",
        "",
        "One process per row, no HTTP: WSGI requests built like the load generator's, against "
        "the harness's PostgreSQL and Redis. µs per request without the profiler. The rows run "
        "one after another, so a busy moment of the machine lands on some of them: use them to "
        "see where the time goes, and the load runs (stack.md) to compare the apps.",
        "",
        "| app | endpoint | wall µs/request | CPU µs/request | file |",
        "|---|---|---:|---:|---|",
    ]
    for item in profiles:
        name = f"{item['app']}-{item['endpoint']}.txt"
        lines = [
            f"{item['app']} {item['endpoint']}: {item['requests']} requests in-process",
            f"wall {item['wall_us_per_request']} µs/request, CPU {item['cpu_us_per_request']} "
            f"µs/request (without the profiler); {item['profiled_cpu_us_per_request']} µs "
            "CPU/request profiled",
            "",
            "A CPU-time profile (pyinstrument sampling process time): waits for PostgreSQL "
            "and Redis are not in it.",
            "",
            "Self time by package (% of the profiled CPU time):",
            *(f"  {percent:5.1f}%  {where}" for where, percent in item["package_self_percent"]),
            "",
            "Self time (% of the profiled CPU time):",
            *(f"  {percent:5.1f}%  {where}" for where, percent in item["self_percent"]),
            "",
            "flaskstack functions, inclusive time (% of the profiled CPU time):",
            *(
                f"  {percent:5.1f}%  {where}"
                for where, percent in item["package_inclusive_percent"]
            ),
            "",
            "Call tree:",
            item["tree"],
        ]
        (folder / name).write_text("\n".join(lines) + "\n")
        summary.append(
            f"| {item['app']} | {item['endpoint']} | {item['wall_us_per_request']:.0f} | "
            f"{item['cpu_us_per_request']:.0f} | {name} |"
        )
    (folder / "summary.md").write_text("\n".join(summary) + "\n")
