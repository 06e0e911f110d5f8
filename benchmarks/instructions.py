"""Instructions per call of flaskstack's output writing, counted by valgrind's callgrind.

Wall-clock ratios need a quiet machine; instruction counts do not: the same
code, inputs and environment execute the same instructions whatever else the
machine does. Each case runs twice under ``valgrind --tool=callgrind``, with
0 and with ``--calls`` calls, in fresh interpreters with ``PYTHONHASHSEED=0``;
the difference divided by ``--calls`` is the cost of one call, start-up
excluded.

The cases write one note (``id``, ``title``, ``body``, ``created_at``) as an
API response does: with a ``rest.Schema`` (``Schema.dump``), and with the
deprecated dict of Flask-RESTful fields (``rest.marshal(note, fields=...)``),
for one object and for a page of 20::

    python benchmarks/instructions.py            # the table, in Markdown
    python benchmarks/instructions.py --calls 500

It needs ``valgrind`` (Debian's package) and no database or Redis.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    "schema, one note": "schema-one",
    "fields dict, one note": "fields-one",
    "schema, page of 20": "schema-page",
    "fields dict, page of 20": "fields-page",
}


def _work(case: str, calls: int) -> None:
    """Run ``case`` ``calls`` times (inside callgrind)."""
    import datetime as dt
    import warnings

    from flaskstack import rest

    class Note(rest.Schema):
        id = rest.Integer()
        title = rest.String()
        body = rest.String()
        created_at = rest.DateTime()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fields = {
            "id": rest.fields.Integer,
            "title": rest.fields.String,
            "body": rest.fields.String,
            "created_at": rest.fields.DateTime,
        }

    class Row:
        def __init__(self, number: int) -> None:
            self.id = number
            self.title = f"Note {number}"
            self.body = "Some text " * 20
            self.created_at = dt.datetime(2026, 12, 6, 12, 0, number % 60, tzinfo=dt.timezone.utc)

    one, page = Row(1), [Row(n) for n in range(20)]
    kind, size = case.split("-")
    data = one if size == "one" else page
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for _ in range(calls):
            if kind == "schema":
                rest.marshal(data, Note)
            else:
                rest.marshal(data, fields=fields)


def _instructions(case: str, calls: int, workdir: Path) -> int:
    out = workdir / f"{case}-{calls}.out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--run",
            case,
            "--calls",
            str(calls),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"callgrind wrote no summary to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per case (200)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _work(args.run, args.calls)
        return
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        for label, case in CASES.items():
            per_call = (
                _instructions(case, args.calls, workdir) - _instructions(case, 0, workdir)
            ) / args.calls
            rows.append((label, per_call))
    print("| case | instructions per call |")
    print("|---|---:|")
    for label, per_call in rows:
        print(f"| {label} | {per_call:,.0f} |")


if __name__ == "__main__":
    main()
