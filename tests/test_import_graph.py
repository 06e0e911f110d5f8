"""The package's import graph has no cycle, and only the package's face imports ``stack``.

The graph is read from the source, not from ``sys.modules``: every import
counts, at the top of a module or inside a function (an import deferred to a
function still runs, and hiding a cycle there only moves the failure to the
first call). Imports under ``if TYPE_CHECKING:`` never run and do not count.
Importing ``flaskstack.auth._tokens`` from outside ``flaskstack.auth`` also
runs ``flaskstack/auth/__init__.py``, so sub-packages count as imported too;
the root package itself does not (every module is inside it).
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import pytest

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent.parent / "flaskstack"
ROOT = "flaskstack"


@dataclasses.dataclass(frozen=True)
class Edge:
    target: str
    line: int
    in_function: bool


def module_files() -> dict[str, pathlib.Path]:
    files = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        if "templates" in parts:  # project and migration templates, not package code
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _package_of(name: str, path: pathlib.Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imported(node: ast.Import | ast.ImportFrom, package: str, modules: set[str]) -> list[str]:
    """The package modules ``node`` runs, itself and its sub-package parents included."""
    named: list[str] = []
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        named.append(source)
        named.extend(f"{source}.{alias.name}" for alias in node.names)
    found: list[str] = []
    for name in named:
        if name not in modules:
            continue
        parts = name.split(".")
        found.extend(".".join(parts[:i]) for i in range(2, len(parts)))  # sub-packages
        found.append(name)
    return list(dict.fromkeys(found))


def _edges(
    node: ast.AST, name: str, package: str, modules: set[str], in_function: bool
) -> set[Edge]:
    edges: set[Edge] = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                edges |= _edges(other, name, package, modules, in_function)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            for target in _imported(child, package, modules):
                # A module inside a sub-package does not re-run its own parents.
                if target != name and not name.startswith(target + "."):
                    edges.add(Edge(target, child.lineno, in_function))
        nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        edges |= _edges(child, name, package, modules, in_function or nested)
    return edges


def import_graph() -> dict[str, set[Edge]]:
    files = module_files()
    modules = set(files)
    return {
        name: _edges(
            ast.parse(path.read_text(encoding="utf-8")),
            name,
            _package_of(name, path),
            modules,
            in_function=False,
        )
        for name, path in files.items()
    }


def cycles(graph: dict[str, set[Edge]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph[node]:
            if edge.target not in index:
                connect(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def describe(component: list[str], graph: dict[str, set[Edge]]) -> str:
    members = set(component)
    lines = [" <-> ".join(component)]
    for name in component:
        for edge in sorted(graph[name], key=lambda e: e.line):
            if edge.target in members:
                where = "inside a function" if edge.in_function else "at the top"
                lines.append(f"  {name} imports {edge.target} (line {edge.line}, {where})")
    return "\n".join(lines)


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles in flaskstack:\n" + "\n".join(
        describe(component, graph) for component in found
    )


def test_only_the_package_face_imports_the_wiring_order() -> None:
    graph = import_graph()
    importers = sorted(
        name
        for name, edges in graph.items()
        if "flaskstack.stack" in {edge.target for edge in edges}
    )
    assert importers == [ROOT]


def test_no_component_imports_the_package_face() -> None:
    # The face imports every component; a component importing it back is a cycle
    # the moment the face changes. The scaffold (run as a console script) may.
    graph = import_graph()
    importers = sorted(
        name
        for name, edges in graph.items()
        if ROOT in {edge.target for edge in edges} and not name.startswith("flaskstack.scaffold")
    )
    assert importers == []


def test_the_graph_sees_cycles_through_functions_and_sub_packages() -> None:
    # The checker itself: a cycle closed by an import inside a function, and one
    # closed through a sub-package's __init__, are both found.
    modules = {"flaskstack.a", "flaskstack.b", "flaskstack.sub", "flaskstack.sub.c"}
    inner = ast.parse("def f():\n    from flaskstack import a\n").body[0]
    assert isinstance(inner, ast.FunctionDef)
    statement = inner.body[0]
    assert isinstance(statement, ast.ImportFrom)
    assert _imported(statement, "flaskstack", modules) == ["flaskstack.a"]
    top = ast.parse("from flaskstack.sub import c\n").body[0]
    assert isinstance(top, ast.ImportFrom)
    assert _imported(top, "flaskstack", modules) == ["flaskstack.sub", "flaskstack.sub.c"]
    graph = {
        "flaskstack.a": {Edge("flaskstack.b", 1, False)},
        "flaskstack.b": {Edge("flaskstack.a", 2, True)},
        "flaskstack.sub": {Edge("flaskstack.sub.c", 1, False)},
        "flaskstack.sub.c": set(),
    }
    assert cycles(graph) == [["flaskstack.a", "flaskstack.b"]]


@pytest.mark.parametrize(
    "module",
    [
        "flaskstack._state",
        "flaskstack._redis_url",
        "flaskstack._credentials",
        "flaskstack._mail_url",
    ],
)
def test_leaf_modules_import_nothing_from_the_package(module: str) -> None:
    assert import_graph()[module] == set()


def _imports_at_import_time(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported (not in functions)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            found.append(child)
        found.extend(_imports_at_import_time(child))
    return found


def test_flask_cors_is_imported_inside_functions_only() -> None:
    """An app without CORS origins never imports Flask-CORS (``flaskstack._cors``)."""
    for name, path in module_files().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for statement in _imports_at_import_time(tree):
            if isinstance(statement, ast.ImportFrom):
                modules = [statement.module or ""]
            else:
                modules = [alias.name for alias in statement.names]
            found = [m for m in modules if m.split(".")[0] == "flask_cors"]
            assert not found, f"{name}, line {statement.lineno}"


def test_flask_limiter_is_imported_by_the_rate_limit_engine_only() -> None:
    """Flask-Limiter and limits are imported by ``flaskstack._limits_engine`` alone, and
    that module only inside functions: an app without rate limits imports neither."""
    engine = "flaskstack._limits_engine"
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found = [m for m in modules if m.split(".")[0] in ("flask_limiter", "limits")]
            assert not found or name == engine, f"{name}, line {node.lineno}"
    for name, edges in import_graph().items():
        for edge in edges:
            assert edge.target != engine or edge.in_function, f"{name}, line {edge.line}"


def test_flask_swagger_ui_is_imported_by_the_docs_page_only_inside_functions() -> None:
    """flask-swagger-ui is imported by ``flaskstack.rest._docs_ui`` alone, inside a function,
    and that module only inside functions: an app with the API docs off imports neither."""
    docs = "flaskstack.rest._docs_ui"
    for name, path in module_files().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            if any(m.split(".")[0] == "flask_swagger_ui" for m in modules):
                assert name == docs, f"{name}, line {node.lineno}"
                assert node not in _imports_at_import_time(tree), f"{name}, line {node.lineno}"
    for name, edges in import_graph().items():
        for edge in edges:
            assert edge.target != docs or edge.in_function, f"{name}, line {edge.line}"


def test_flask_mailman_is_imported_by_the_mail_adapter_only() -> None:
    """Flask-Mailman is imported by ``flaskstack._mail_backend`` alone, and that module only
    inside functions: an app imports neither until it sends its first message."""
    adapter = "flaskstack._mail_backend"
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found = [m for m in modules if m.split(".")[0] == "flask_mailman"]
            assert not found or name == adapter, f"{name}, line {node.lineno}"
    for name, edges in import_graph().items():
        for edge in edges:
            assert edge.target != adapter or edge.in_function, f"{name}, line {edge.line}"


def test_the_jobs_dashboard_is_imported_only_inside_functions() -> None:
    """``flaskstack._jobs_dashboard`` is imported only inside functions (by ``stack.py`` when
    ``FLASKSTACK_JOBS_DASHBOARD_PATH`` is set): an app without the dashboard never loads it."""
    dashboard = "flaskstack._jobs_dashboard"
    for name, edges in import_graph().items():
        for edge in edges:
            assert edge.target != dashboard or edge.in_function, f"{name}, line {edge.line}"


def test_the_identity_provider_modules_are_imported_only_inside_functions() -> None:
    """``flaskstack.auth._oidc``, ``_oidc_api``, ``_oidc_views`` and ``_oidc_client`` (which
    imports Authlib) are imported only inside functions, when ``FLASKSTACK_OIDC_PROVIDERS``
    names a provider; Authlib only by ``_oidc_client``, which the views import only when a
    sign-in with a provider starts or comes back."""
    lazy = {
        "flaskstack.auth._oidc",
        "flaskstack.auth._oidc_api",
        "flaskstack.auth._oidc_views",
        "flaskstack.auth._oidc_client",
    }
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found = [m for m in modules if m.split(".")[0] == "authlib"]
            assert not found or name == "flaskstack.auth._oidc_client", (
                f"{name}, line {node.lineno}"
            )
    for name, edges in import_graph().items():
        for edge in edges:
            client = edge.target == "flaskstack.auth._oidc_client"
            assert not client or edge.in_function, f"{name}, line {edge.line}"
            if name in lazy:
                continue
            assert edge.target not in lazy or edge.in_function, f"{name}, line {edge.line}"
