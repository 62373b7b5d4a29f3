"""Is ``module.name`` a class defined inside the model libraries? Answered without importing
anything the process has not imported already.

If the module is loaded, the object itself is inspected. Otherwise its source is: the file
is located under the library's installed package (no import, not even of parent packages),
parsed with ``ast``, and ``name`` must be a top-level ``class`` there, or be imported there
from another module of the model libraries that defines it (re-exports like
``pandas.DataFrame`` are followed; a re-export of ``threading.Thread`` is not a model
class). Compiled extension modules (Cython: ``sklearn.tree._tree``, ``pandas._libs``) cannot
be read: there the name must look like a class. A scan therefore costs no library import,
which keeps a cold scan in a fresh task process as fast as modelscan's.
"""

from __future__ import annotations

import ast
import functools
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

MAX_HOPS = 6
_EXTENSIONS = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def is_library_class(module: str, name: str, roots: tuple[str, ...]) -> bool | None:
    """True/False if decided, None if the library is not installed or the module is compiled
    (the caller then judges the name's shape)."""
    return _decide(module, name, roots, 0)


@functools.lru_cache(maxsize=8192)
def _decide(module: str, name: str, roots: tuple[str, ...], hops: int) -> bool | None:
    loaded = sys.modules.get(module)
    if loaded is not None and name in vars(loaded):
        obj = vars(loaded)[name]
        defined = getattr(obj, "__module__", "") or ""
        return isinstance(obj, type) and _under(defined, roots)
    source = _source(module)
    if source is None or hops > MAX_HOPS:
        return None
    if source.suffix != ".py":
        return None  # compiled extension: its names are not readable without importing it
    tree = _parse(source)
    if tree is None:
        return False
    found = _top_level(tree, name)
    if isinstance(found, ast.ClassDef):
        return True
    if isinstance(found, tuple):  # (module it is imported from, its name there)
        origin, original = found
        origin = _absolute(origin, module, source)
        if not _under(origin, roots):
            return False
        return _decide(origin, original, roots, hops + 1)
    for star in _star_imports(tree, module, source):
        if _under(star, roots) and _decide(star, name, roots, hops + 1):
            return True
    return False


def _under(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


@functools.lru_cache(maxsize=4096)
def _source(module: str) -> Path | None:
    """The file of ``module`` under its top-level package, found without importing."""
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level lookup imports nothing
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return Path(spec.origin) if spec and spec.origin and len(parts) == 1 else None
    for base in spec.submodule_search_locations:
        folder = Path(base, *parts[1:])
        for candidate in (folder / "__init__.py", folder.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        compiled = [
            p for p in folder.parent.glob(folder.name + ".*") if p.name.endswith(_EXTENSIONS)
        ]
        if compiled:
            return compiled[0]
    return None


@functools.lru_cache(maxsize=1024)
def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None


def _statements(body: list[ast.stmt]) -> Any:
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from _statements(stmt.body)
            yield from _statements(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from _statements(stmt.body)
            for handler in stmt.handlers:
                yield from _statements(handler.body)
            yield from _statements(stmt.orelse)


def _top_level(tree: ast.Module, name: str) -> ast.ClassDef | tuple[str, str] | ast.stmt | None:
    """The last top-level statement binding ``name`` (a class, an import, or anything else)."""
    found: Any = None
    for stmt in _statements(tree.body):
        if isinstance(stmt, ast.ClassDef) and stmt.name == name:
            found = stmt
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if (alias.asname or alias.name) == name and alias.name != "*":
                    found = ("." * stmt.level + (stmt.module or ""), alias.name)
        elif isinstance(stmt, (ast.Import, ast.FunctionDef, ast.AsyncFunctionDef)):
            names = [a.asname or a.name for a in getattr(stmt, "names", [])]
            if getattr(stmt, "name", None) == name or name in names:
                found = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found = stmt
    return found


def _absolute(origin: str, module: str, source: Path) -> str:
    level = len(origin) - len(origin.lstrip("."))
    if not level:
        return origin
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    rest = origin[level:]
    return f"{package}.{rest}" if rest else package


def _star_imports(tree: ast.Module, module: str, source: Path) -> list[str]:
    return [
        _absolute("." * stmt.level + (stmt.module or ""), module, source)
        for stmt in _statements(tree.body)
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names)
    ]
