"""Directives that generate flaskstack's reference pages from the code.

``.. flaskstack-settings::`` renders every row of
:data:`flaskstack.config.SETTINGS`, grouped by concern, and
``.. flaskstack-checks::`` every id of :data:`flaskstack.checks.CATALOGUE`,
grouped by area. Nothing here lists a setting or a check by hand: the tables
in the package are the single source, as the style guide requires.

Each setting becomes a ``.. setting::`` object and each check a
``.. check::`` object, so other pages can link to them with
``:setting:`SECRET_KEY``` and ``:check:`database.E001```.

``.. flaskstack-console::`` runs commands in a copy of the quickstart
project and shows their real output, so a sample of ``flask stack check``
or ``flask stack config`` cannot drift from what the commands print.
"""

from __future__ import annotations

import itertools
import os
import shutil
import string
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx

    from flaskstack.config import Setting

logger = logging.getLogger(__name__)

# Headings for concerns whose name is an abbreviation; others are capitalised.
_CONCERN_TITLES = {
    "db": "Database",
    "api": "API",
    "redis": "Redis",
    "core": "Core",
    "cors": "CORS",
    "limits": "Rate limits",
    "mail": "Mail",
    "pages": "Error pages",
}


def _plain(text: str) -> str:
    """Escape ``text`` so reST shows it verbatim (no roles, links or emphasis)."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)


def _literal(value: str) -> str:
    """``value`` as an inline literal; falls back to escaped text if it has backquotes."""
    if "`" in value or not value.strip():
        return _plain(value)
    return f"``{value}``"


def _title(text: str) -> list[str]:
    return [text, "-" * len(text), ""]


class _GeneratingDirective(SphinxDirective):
    """Parse generated reST, section titles included, in place of the directive."""

    has_content = False
    required_arguments = 0
    optional_arguments = 0

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        # Every generated line is attributed to the directive, so a warning
        # about generated text points at the page that asked for it.
        source, line = self.get_source_info()
        content = StringList()
        for text in self.lines():
            content.append(text, source, line)
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, content, container)
        return container.children


class SettingsDirective(_GeneratingDirective):
    """``.. flaskstack-settings::`` — the config reference."""

    def lines(self) -> list[str]:
        import flaskstack.config
        from flaskstack.config import SETTINGS

        # Rebuild the page whenever the table changes.
        self.env.note_dependency(flaskstack.config.__file__)

        out: list[str] = []
        concerns = list(dict.fromkeys(s.concern for s in SETTINGS))
        for concern in concerns:
            out += _title(_CONCERN_TITLES.get(concern, concern.capitalize()))
            for setting in (s for s in SETTINGS if s.concern == concern):
                out += self.setting_lines(setting)
        return out

    def setting_lines(self, setting: Setting) -> list[str]:
        out = [f".. setting:: {setting.key}", ""]
        out += [f"   {line}" for line in setting.doc.splitlines()] + [""]
        fields = [
            ("Type", _literal(setting.type)),
            ("Default", self.default_text(setting)),
        ]
        if setting.profiles:
            fields.append(
                (
                    "Profiles",
                    "; ".join(
                        f"{_literal(name)}: {_literal(repr(value))}"
                        for name, value in setting.profiles.items()
                    ),
                )
            )
        if setting.env:
            environment = ", ".join(_literal(name) for name in setting.env)
        else:
            # Every key can come from FLASK_<KEY> (Flask's from_prefixed_env);
            # say so where the setting has no variable of its own.
            environment = f"{_literal('FLASK_' + setting.key)} only (Flask's prefix)"
        fields.append(("Environment", environment))
        fields.append(("Accepts", _plain(setting.expected)))
        fields.append(("Owner", _owner(setting)))
        if setting.secret:
            fields.append(("Secret", "yes: masked wherever flaskstack shows it"))
        out += [f"   :{name}: {value}" for name, value in fields]
        out.append("")
        return out

    def default_text(self, setting: Setting) -> str:
        if setting.default_doc:
            return setting.default_doc
        if callable(setting.default):
            logger.warning(
                "setting %s has a computed default but no default_doc to describe it",
                setting.key,
                location=self.get_location(),
            )
            return "computed when the app is set up"
        return _literal(repr(setting.default))


def _owner(setting: Setting) -> str:
    if not setting.native:
        return "flaskstack"
    from flask import Flask

    library = "Flask" if setting.key in Flask.default_config else "the wrapped library"
    return f"{library} (a native key: flaskstack sets only its default)"


class ChecksDirective(_GeneratingDirective):
    """``.. flaskstack-checks::`` — the check reference."""

    def lines(self) -> list[str]:
        import flaskstack.checks

        self.env.note_dependency(flaskstack.checks.__file__)

        out: list[str] = []
        ids = sorted(flaskstack.checks.CATALOGUE, key=_check_sort_key)
        for area, group in itertools.groupby(ids, key=lambda i: i.partition(".")[0]):
            out += _title(f"``{area}``")
            for check_id in group:
                meaning, fix = _meaning_and_fix(flaskstack.checks.CATALOGUE[check_id])
                out += [f".. check:: {check_id}", "", f"   {_plain(meaning)}", ""]
                if fix:
                    out += [f"   :Fix: {_plain(fix)}", ""]
        return out


def _meaning_and_fix(entry: object) -> tuple[str, str | None]:
    """A catalogue entry's meaning and fix: a string, or an object or pair holding both."""
    if isinstance(entry, str):
        return entry, None
    if isinstance(entry, tuple) and len(entry) == 2:
        return str(entry[0]), str(entry[1])
    meaning = getattr(entry, "meaning", None)
    if meaning is None:
        raise TypeError(f"unexpected check catalogue entry {entry!r}")
    fix = getattr(entry, "fix", None)
    return str(meaning), None if fix is None else str(fix)


class CliDirective(_GeneratingDirective):
    """``.. flaskstack-cli:: module:command name [parent]`` — a click command and its
    sub-commands, generated from the click objects.

    ``name`` is the command's name on the command line; ``parent`` the program
    it is a sub-command of (``flask`` for ``flask stack``).
    """

    required_arguments = 2
    optional_arguments = 1

    def lines(self) -> list[str]:
        import importlib

        import click

        module_name, _, attribute = self.arguments[0].partition(":")
        module = importlib.import_module(module_name)
        if module.__file__:
            self.env.note_dependency(module.__file__)
        command = getattr(module, attribute)
        parent = None
        if len(self.arguments) > 2:
            parent = click.Context(click.Group(self.arguments[2]), info_name=self.arguments[2])
        out: list[str] = []
        self.command_lines(command, self.arguments[1], parent, out)
        return out

    def command_lines(self, command: t.Any, name: str, parent: t.Any, out: list[str]) -> None:
        import inspect

        import click

        ctx = click.Context(command, info_name=name, parent=parent)
        path = ctx.command_path
        out += _title(f"``{path}``")
        out += [f".. program:: {path}", ""]
        out += [".. code-block:: text", "", f"    {command.get_usage(ctx)}", ""]
        out += [
            _plain(line) if line else ""
            for line in inspect.cleandoc(command.help or "").splitlines()
        ]
        out.append("")
        for param in command.params:
            if isinstance(param, click.Argument):
                continue
            record = param.get_help_record(ctx)
            if record is None:
                continue
            names, help_text = record
            out += [f".. option:: {names}", "", f"   {_plain(help_text) or 'No description.'}", ""]
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                self.command_lines(command.get_command(ctx, sub), sub, ctx, out)


class OptionalIncludeDirective(SphinxDirective):
    """``.. flaskstack-include-if-present:: path`` — include a generated reST file if it exists.

    The directive's content is shown instead when the file is missing.
    """

    required_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        import os

        relative, path = self.env.relfn2path(self.arguments[0])
        self.env.note_dependency(relative)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            self.state_machine.insert_input(text.splitlines(), path)
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


# Where the samples say the project lives, instead of the build's temporary directory.
SHOWN_PROJECT = "/home/me/myapp"
# Variables that would change what the sample commands print.
_FOREIGN = ("FLASK_", "FLASKSTACK_", "PYTEST_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL")
# The files of the quickstart project that the samples do not start from.
_NOT_COPIED = shutil.ignore_patterns("__pycache__", "instance", "migrations", ".venv")


class ConsoleDirective(SphinxDirective):
    """``.. flaskstack-console::`` — commands run in the quickstart project, with their output.

    Each line of the content is a shell command, run in order in a fresh copy
    of ``docs/quickstart/`` with this interpreter's ``flask``. A line that
    starts with ``$`` is shown with what it printed; the others set the scene
    unseen and must succeed. ``:lines: N`` keeps the first ``N`` lines of each
    shown output and marks the cut with ``...``.
    """

    has_content = True
    option_spec: t.ClassVar[dict[str, t.Callable[[str], t.Any]]] = {
        "lines": directives.nonnegative_int,
    }

    def run(self) -> list[nodes.Node]:
        import flaskstack

        # The output is the package's: rebuild the page when the package changes.
        for module in Path(flaskstack.__file__).parent.glob("*.py"):
            self.env.note_dependency(str(module))
        limit: int | None = self.options.get("lines")
        source = Path(self.env.srcdir) / "quickstart"
        shown: list[str] = []
        with tempfile.TemporaryDirectory() as scratch:
            project = Path(scratch).resolve() / "myapp"
            shutil.copytree(source, project, ignore=_NOT_COPIED)
            for line in (line.strip() for line in self.content):
                if not line:
                    continue
                command = line.removeprefix("$").strip()
                status, output = _run(command, project)
                output = output.replace(str(project), SHOWN_PROJECT).rstrip()
                if not line.startswith("$"):
                    if status != 0:
                        logger.warning(
                            "flaskstack-console: %r failed (exit status %s):\n%s",
                            command,
                            status,
                            output,
                            location=self.get_location(),
                        )
                    continue
                lines = output.splitlines()
                if limit is not None and len(lines) > limit:
                    lines = [*lines[:limit], "..."]
                shown += [f"$ {command}", *lines]
        text = "\n".join(shown)
        block = nodes.literal_block(text, text)
        block["language"] = "console"
        return [block]


def _run(command: str, project: Path) -> tuple[int, str]:
    """Run ``command`` in ``project`` as a user would in a fresh shell; its status and output."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_FOREIGN)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        ["bash", "-c", f"{command} 2>&1"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, result.stdout


def _check_sort_key(check_id: str) -> tuple[str, str]:
    area, _, code = check_id.partition(".")
    return area, code


def _attribute_doc(module_name: str, name: str) -> list[str] | None:
    """The docstring written next to ``name`` in the source of ``module_name``."""
    try:
        docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
    except Exception:  # no source to analyse
        return None
    found = docs.get(("", name))
    return list(found) if found else None


def reexported_data_doc(
    app: Sphinx, what: str, name: str, obj: object, options: t.Any, lines: list[str]
) -> None:
    """Give re-exported data (``flaskstack.db``) the docstring of its definition.

    autodoc looks for an attribute's docstring only in the module it documents
    the name under; for ``flaskstack.db`` that is ``flaskstack/__init__.py``,
    which merely imports it, so autodoc would show the docstring of the
    object's class instead. Take the one written in the defining module.
    """
    if what != "data" or not name.startswith("flaskstack."):
        return
    module_name, _, attribute = name.rpartition(".")
    if _attribute_doc(module_name, attribute) is not None:
        return
    for other_name, module in sorted(sys.modules.items()):
        if other_name == module_name or not other_name.startswith("flaskstack."):
            continue
        if getattr(module, attribute, None) is not obj:
            continue
        doc = _attribute_doc(other_name, attribute)
        if doc is not None:
            lines[:] = doc
            return


def setup(app: Sphinx) -> dict[str, t.Any]:
    app.connect("autodoc-process-docstring", reexported_data_doc)
    app.add_object_type(
        "setting",
        "setting",
        indextemplate="pair: %s; setting",
        objname="configuration setting",
    )
    app.add_object_type(
        "check",
        "check",
        indextemplate="pair: %s; check",
        objname="system check",
    )
    app.add_directive("flaskstack-settings", SettingsDirective)
    app.add_directive("flaskstack-checks", ChecksDirective)
    app.add_directive("flaskstack-cli", CliDirective)
    app.add_directive("flaskstack-include-if-present", OptionalIncludeDirective)
    app.add_directive("flaskstack-console", ConsoleDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
