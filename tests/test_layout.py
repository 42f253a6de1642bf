"""The package's layout: no import cycles, and the dependency arrows point one way.

Imports are read from the source (module-level and function-level alike), so an
import hidden inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "corsadmin"

# The top: the front ends (admin, REST API, command line) and the metrics' URLconf (its view
# authenticates as the API does).
TOP = (
    "corsadmin.admin",
    "corsadmin.api",
    "corsadmin.management",
    "corsadmin.metrics_urls",
)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (migrations left out)."""
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root.parent)
        if "migrations" in relative.parts:
            continue
        name = ".".join(relative.with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = parts[: len(parts) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(c for c in candidates if c in modules and c != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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
            visit(node)
    return found


def in_layer(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def is_top(module: str) -> bool:
    return any(in_layer(module, top) for top in TOP)


def test_no_import_cycles():
    assert cycles(import_graph(PACKAGE)) == []


def test_nothing_below_the_front_ends_imports_them():
    graph = import_graph(PACKAGE)
    upward = sorted(
        (module, target)
        for module, targets in graph.items()
        if not is_top(module)
        for target in targets
        if is_top(target)
    )
    assert upward == []


@pytest.mark.parametrize(
    "front_end, others",
    [
        ("corsadmin.management", ("corsadmin.admin",)),
        ("corsadmin.api", ("corsadmin.admin", "corsadmin.management")),
        ("corsadmin.admin", ("corsadmin.api", "corsadmin.management")),
    ],
)
def test_the_front_ends_do_not_import_each_other(front_end, others):
    graph = import_graph(PACKAGE)
    crossing = sorted(
        (module, target)
        for module, targets in graph.items()
        if in_layer(module, front_end)
        for target in targets
        if any(in_layer(target, other) for other in others)
    )
    assert crossing == []


@pytest.mark.parametrize(
    "module, allowed",
    [
        ("corsadmin.hosting", set()),  # data: the shared hosting platforms
        ("corsadmin.suffixes", set()),  # the public suffixes: data
        # the one parser: the bottom, and its data
        ("corsadmin.origins", {"corsadmin.hosting", "corsadmin.suffixes"}),
        ("corsadmin.signals", set()),  # only the Signals (safe to import before the apps are ready)
        # the decision: plain data
        ("corsadmin.entries", {"corsadmin.hosting", "corsadmin.origins", "corsadmin.suffixes"}),
        ("corsadmin.host_index", set()),
        (
            "corsadmin.snapshot",
            {"corsadmin.entries", "corsadmin.host_index", "corsadmin.origins", "corsadmin.regex"},
        ),
    ],
)
def test_the_bottom_of_the_package_stands_alone(module, allowed):
    assert import_graph(PACKAGE)[module] <= allowed


# The packages of the extras: only the REST API imports them; tqdm only behind a guard.
API_PACKAGES = {"rest_framework", "django_filters", "drf_spectacular", "drf_spectacular_sidecar"}
GUARDED = {"tqdm": "corsadmin.progress"}


def extra_imports(root: Path) -> list[tuple[str, str, bool]]:
    """(module, imported package, guarded) for each import of an extra's package, at any level;
    ``guarded``: inside a ``try`` whose handlers catch ImportError."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded_nodes: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers
            ):
                guarded_nodes.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                tops = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            else:
                continue
            for top in tops:
                if top in API_PACKAGES or top in GUARDED:
                    found.append((name, top, id(node) in guarded_nodes))
    return found


def test_only_the_api_imports_the_api_extra_and_tqdm_is_optional():
    """The core install (``pip install corsadmin``) has none of these: nothing else may need them."""
    outside = [
        (module, package, guarded)
        for module, package, guarded in extra_imports(PACKAGE)
        if not in_layer(module, "corsadmin.api") and not (guarded and GUARDED.get(package) == module)
    ]
    assert outside == []


def test_a_function_level_import_of_an_extra_is_found(tmp_path):
    package = write_package(
        tmp_path,
        {
            "api/views.py": "from rest_framework import views\n",
            "core.py": "def later():\n    from rest_framework.settings import api_settings\n",
            "progress.py": "try:\n    import tqdm\nexcept ImportError:\n    tqdm = None\n",
            "cli.py": "import tqdm.auto\n",
        },
    )
    assert extra_imports(package) == [
        ("pkg.api.views", "rest_framework", False),
        ("pkg.cli", "tqdm", False),
        ("pkg.core", "rest_framework", False),
        ("pkg.progress", "tqdm", True),
    ]


def test_the_change_log_and_the_validators_need_nothing_from_the_models_they_serve():
    graph = import_graph(PACKAGE)
    assert graph["corsadmin.models.changelog"] <= {"corsadmin", "corsadmin.conf", "corsadmin.signals"}
    assert graph["corsadmin.models.validation"] <= {"corsadmin.origins", "corsadmin.regex"}


MAX_LINES = 450  # small enough to read in one sitting


def source_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts and p.read_text().strip())


def test_no_module_is_over_450_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in source_modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_module_opens_with_what_it_is_for():
    silent = [
        str(p.relative_to(PACKAGE))
        for p in source_modules()
        if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert silent == []


# --- the check itself can fail ---------------------------------------------------------------


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    package = write_package(
        tmp_path,
        {
            "a.py": "from . import b\n",
            "b.py": "def later():\n    from .a import thing\n",
            "c.py": "import pkg.a\n",
        },
    )
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.b"]]


def test_relative_imports_of_sub_packages_are_resolved(tmp_path):
    package = write_package(
        tmp_path,
        {
            "api/__init__.py": "",
            "api/views.py": "from ..core import x\nfrom . import urls\n",
            "api/urls.py": "",
            "core.py": "",
        },
    )
    assert import_graph(package)["pkg.api.views"] == {"pkg.core", "pkg.api", "pkg.api.urls"}
