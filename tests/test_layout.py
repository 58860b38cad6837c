"""The package's layout: no import cycle among its modules, no module too long.

The import graph is built from source with ``ast``, not by importing: every
``import`` and ``from ... import`` counts, also those inside functions and under
``if TYPE_CHECKING:``, relative imports resolved against the importing module.
``rules/`` is installed as ``astvmap.rules`` (pyproject's package-dir) and counts
as that. An edge goes to the module named: ``from astvmap.values import Val`` is an
edge to ``astvmap.values``; ``from . import cache`` to ``astvmap.cache`` (a module
of the package) and ``from . import __version__`` to the package ``astvmap``."""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"astvmap": ROOT / "astvmap", "astvmap.rules": ROOT / "rules"}
MAX_LINES = 1000


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its ``__init__``),
    subpackages included; astvmap/rules is a link to rules/, walked as that."""
    out = {}
    for package, folder in PACKAGES.items():
        for here, dirs, files in os.walk(folder):  # does not follow the rules link
            dirs[:] = sorted(d for d in dirs if (Path(here) / d / "__init__.py").exists())
            prefix = ".".join([package, *Path(here).relative_to(folder).parts])
            for name in sorted(f for f in files if f.endswith(".py")):
                stem = name[:-3]  # astvmap/cli.py is a link to cli.py: counted here
                out[prefix if stem == "__init__" else f"{prefix}.{stem}"] = Path(here) / name
    return out


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the package that ``module`` imports (anywhere in its source)."""
    is_package = path.stem == "__init__"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_package, node)
            # `from pkg import sub` names the module pkg.sub when it is one.
            names = [
                f"{target}.{a.name}" if f"{target}.{a.name}" in known else target
                for a in node.names
            ]
        else:
            continue
        for name in names:
            # `import astvmap.rules.registry` runs the packages above it too, but the
            # edge that matters is the deepest module of ours it names.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, set(modules)) for m, p in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_sees_known_edges():
    """The graph builder itself: relative, absolute, nested and package edges."""
    graph = import_graph()
    assert "astvmap.values" in graph["astvmap.rules.registry"]  # absolute, across folders
    assert "astvmap.rules.registry" in graph["astvmap.rules.elementwise"]  # relative
    assert "astvmap.api" in graph["astvmap"]  # from .api import vmap in __init__
    assert "astvmap.pipeline" in graph["astvmap.api"]  # an import inside a function
    assert "astvmap.api" in graph["astvmap.cli"]  # the linked cli.py counts too
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_too_long():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
