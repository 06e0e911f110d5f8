"""The public surface is deliberate: which modules are public, and what each exports.

httpx's rule, applied to flaskstack. Internals live in modules whose name
starts with ``_``; a public module's ``__all__`` is exactly what it exports:

- the public modules are the ones listed here (adding one is a decision);
- every name in ``__all__`` exists;
- every name a public module binds itself at the top (``def``, ``class``,
  assignment) either starts with ``_`` or is in ``__all__``: a helper is
  never public by accident. Imported names are re-exports only when
  ``__all__`` lists them;
- a class, function or module in ``__all__`` is flaskstack's own unless it is
  one of the few re-exports of a wrapped library listed in
  :data:`FOREIGN_REEXPORTS` (and each of those really is foreign, so the
  list stays exact);
- what users read and copy (the API reference, the guides, the quickstart
  project, the reference app, the scaffold templates) imports nothing from an
  internal module.

``docs/api.rst`` documenting every public name is checked by
``tests/test_docs.py``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil
import re
import types
import typing as t

import pytest

import flaskstack

ROOT = pathlib.Path(__file__).resolve().parent.parent

PUBLIC_MODULES = [
    "flaskstack",
    "flaskstack.admin",
    "flaskstack.auth",
    "flaskstack.caching",
    "flaskstack.checks",
    "flaskstack.cli",
    "flaskstack.config",
    "flaskstack.database",
    "flaskstack.errors",
    "flaskstack.forms",
    "flaskstack.gunicorn",
    "flaskstack.health",
    "flaskstack.jobs",
    "flaskstack.limits",
    "flaskstack.logs",
    "flaskstack.mail",
    "flaskstack.metrics",
    "flaskstack.migrations",
    "flaskstack.problems",
    "flaskstack.redis",
    "flaskstack.rest",
    "flaskstack.rest.fields",
    "flaskstack.scaffold",
    "flaskstack.sessions",
    "flaskstack.stack",
    "flaskstack.testing",
    "flaskstack.testing.plugin",
    "flaskstack.throttle",
    "flaskstack.tracing",
    "flaskstack.urls",
]

# Names in a public ``__all__`` whose object is defined by a wrapped library,
# exported unchanged on purpose.
FOREIGN_REEXPORTS = {
    # db.Model: the class Flask-SQLAlchemy builds for flaskstack's metadata.
    ("flaskstack", "Model"),
    ("flaskstack.database", "Model"),
    # Flask-Login's proxy, so users import it with the login functions.
    ("flaskstack.auth", "current_user"),
    # Flask-WTF's exception for a failed CSRF check.
    ("flaskstack.forms", "CSRFError"),
}

# The pytest plugin's interface is its hooks and fixtures, which pytest finds
# by name; nothing in it is for import, so its ``__all__`` is empty.
PLUGIN = "flaskstack.testing.plugin"


def _module_names() -> list[str]:
    names = ["flaskstack"]
    names += [info.name for info in pkgutil.walk_packages(flaskstack.__path__, "flaskstack.")]
    return names


def _is_internal(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("."))


def _targets(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [name for element in node.elts for name in _targets(element)]
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return []  # attributes and subscripts bind no name of the module


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _is_fixture(node: ast.stmt) -> bool:
    return isinstance(node, ast.FunctionDef) and any(
        "pytest.fixture" in ast.unparse(decorator) for decorator in node.decorator_list
    )


def bound_names(body: list[ast.stmt], *, for_pytest: bool = False) -> set[str]:
    """The names a module binds at its top level by ``def``, ``class`` or assignment.

    Imports are left out: an imported name is a re-export only when ``__all__``
    lists it. Code under ``if TYPE_CHECKING:`` never runs and is left out too.
    With ``for_pytest``, pytest hooks and fixtures are left out.
    """
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if for_pytest and (node.name.startswith("pytest_") or _is_fixture(node)):
                continue
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(name for target in node.targets for name in _targets(target))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            names.update(_targets(node.target))
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                names |= bound_names(node.body, for_pytest=for_pytest)
            names |= bound_names(node.orelse, for_pytest=for_pytest)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                names |= bound_names(block, for_pytest=for_pytest)
        elif isinstance(node, (ast.With, ast.For, ast.While)):
            names |= bound_names(node.body, for_pytest=for_pytest)
    return names


def _public(name: str) -> types.ModuleType:
    return importlib.import_module(name)


def _home(value: object) -> str | None:
    """The module that defines ``value``, for classes, functions and modules."""
    if inspect.ismodule(value):
        return value.__name__
    if inspect.isclass(value) or inspect.isroutine(value):
        return t.cast("str", value.__module__)
    return None


def _in_flaskstack(module: str) -> bool:
    return module == "flaskstack" or module.startswith("flaskstack.")


def test_the_public_modules_are_the_listed_ones() -> None:
    found = sorted(name for name in _module_names() if not _is_internal(name))
    assert found == PUBLIC_MODULES, (
        "a module without a leading underscore is public: list it in PUBLIC_MODULES and in "
        "docs/api.rst, or rename it to _name if it is not for users"
    )


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_names_exist_once(name: str) -> None:
    module = _public(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [attribute for attribute in exported if not hasattr(module, attribute)]
    assert not missing, f"{name}.__all__ names what the module lacks: {missing}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_a_module_binds_is_in_all(name: str) -> None:
    module = _public(name)
    assert module.__file__ is not None
    tree = ast.parse(pathlib.Path(module.__file__).read_text(encoding="utf-8"))
    bound = bound_names(tree.body, for_pytest=name == PLUGIN)
    unlisted = sorted(
        binding
        for binding in bound
        if not binding.startswith("_") and binding not in module.__all__
    )
    assert not unlisted, (
        f"{name} binds public names it does not export: {unlisted}. Add them to __all__ "
        "(and docs/api.rst) if users need them; otherwise give them a leading underscore "
        "or move them to an internal module"
    )


def test_the_plugin_exports_nothing_for_import() -> None:
    assert _public(PLUGIN).__all__ == []


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_exported_classes_and_functions_are_flaskstacks_own(name: str) -> None:
    module = _public(name)
    foreign = sorted(
        attribute
        for attribute in module.__all__
        if (home := _home(getattr(module, attribute))) is not None
        and not _in_flaskstack(home)
        and (name, attribute) not in FOREIGN_REEXPORTS
    )
    assert not foreign, (
        f"{name}.__all__ re-exports names defined outside flaskstack: {foreign}. Import them "
        "from their library, or list them in FOREIGN_REEXPORTS with the reason"
    )


@pytest.mark.parametrize(("name", "attribute"), sorted(FOREIGN_REEXPORTS))
def test_every_listed_reexport_is_exported_and_foreign(name: str, attribute: str) -> None:
    module = _public(name)
    assert attribute in module.__all__
    value = getattr(module, attribute)
    home = _home(value) or type(value).__module__
    assert not _in_flaskstack(home), f"{name}.{attribute} is flaskstack's own ({home})"


def test_no_public_name_is_an_internal_module() -> None:
    for name in PUBLIC_MODULES:
        module = _public(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if inspect.ismodule(value):
                assert not _is_internal(value.__name__), f"{name}.{attribute}"


# -- what users read and copy ---------------------------------------------------------------

_INTERNAL_PATH = re.compile(r"\bflaskstack(?:\.\w+)*\._(?!_)\w+")

# Modules of flaskstack whose code a user sees (the reference app, the
# quickstart project, the scaffold's templates) and pages they read.
_USER_FACING = [
    *sorted((ROOT / "example").rglob("*.py")),
    *sorted((ROOT / "docs" / "quickstart").rglob("*.py")),
    *sorted((ROOT / "flaskstack" / "scaffold" / "templates").rglob("*.tmpl")),
    *sorted((ROOT / "docs").glob("*.rst")),
    *sorted((ROOT / "docs" / "guides").glob("*.rst")),
    ROOT / "README.md",
]


@pytest.mark.parametrize("path", _USER_FACING, ids=lambda path: str(path.relative_to(ROOT)))
def test_user_facing_code_and_docs_use_only_public_modules(path: pathlib.Path) -> None:
    text = path.read_text(encoding="utf-8")
    internal = sorted(set(_INTERNAL_PATH.findall(text)))
    assert not internal, f"{path.relative_to(ROOT)} refers to internal modules: {internal}"


def test_the_internal_path_pattern_matches_only_internals() -> None:
    assert _INTERNAL_PATH.findall("from flaskstack.rest._inputs import Invalid") == [
        "flaskstack.rest._inputs"
    ]
    assert _INTERNAL_PATH.findall("flaskstack._state") == ["flaskstack._state"]
    assert (
        _INTERNAL_PATH.findall("from flaskstack.rest import fields; flaskstack.__version__") == []
    )


def test_bound_names_sees_definitions_but_not_imports() -> None:
    tree = ast.parse(
        "import os\n"
        "from x import y\n"
        "a = b = 1\n"
        "c: int = 2\n"
        "d, (e, *f) = 3, (4, 5)\n"
        "g.h = 6\n"
        "def i(): pass\n"
        "class J: pass\n"
        "if TYPE_CHECKING:\n    k = 1\nelse:\n    m = 1\n"
        "try:\n    n = 1\nexcept ImportError:\n    o = 1\n"
        "@pytest.fixture\ndef p(): pass\n"
        "def pytest_configure(config): pass\n"
    )
    defined = {"a", "b", "c", "d", "e", "f", "i", "J", "m", "n", "o"}
    assert bound_names(tree.body) == defined | {"p", "pytest_configure"}
    assert bound_names(tree.body, for_pytest=True) == defined
