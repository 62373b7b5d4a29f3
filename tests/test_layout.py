"""The source tree stays navigable: no import cycles, no oversized modules, tests mirror it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"provider": "mlsecops_provider", "core": "mlsecops_provider.core"}
FOLDERS |= {name: f"mlsecops_provider.{name}" for name in ("operators", "sensors", "plugins")}
MAX_CORE_LINES = 420  # "about 400"; a module past it is a concern to split


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if folder == "provider" and parts and parts[0] in ("core",):
                continue
            found[".".join([package, *parts])] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules this one imports at run time, lazy imports inside functions included.

    Imports under ``if TYPE_CHECKING:`` are annotations only and never run.
    """
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        out |= {name for name in names if name in modules}
    return out


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    nodes, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        nodes.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_our_modules() -> None:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        # a package's __init__ is imported with any of its submodules: not an edge back
        graph[name] = {m for m in _imports(path, modules) if m != name}
    assert _cycles(graph) == []


def test_no_core_module_is_oversized() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "core").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_CORE_LINES
    }
    assert long == {}


def test_core_tests_mirror_the_core_subpackages() -> None:
    for package in (ROOT / "core").iterdir():
        if (package / "__init__.py").is_file() and package.name != "training":
            assert (ROOT / "tests" / "core" / package.name).is_dir(), package.name
