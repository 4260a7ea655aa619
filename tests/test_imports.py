"""The package's modules import one another one way: no import cycle inside sj_rga (issue 20).

The graph is read from the source with ``ast``: an edge m → n for every ``import``/``from ... import`` in module
m, at module level or inside a function (a function-level import that closes a cycle is a cycle all the
same, only deferred), that names module n of the package (``from .x import y`` is an edge to ``x``, or to
``x.y`` when that is a module). The implicit import of a parent package, which Python performs before any
submodule, is not an edge.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sj_rga"


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for every module under ``package``."""
    paths = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                       for inner in ast.walk(node)}  # imports for type hints alone never run
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else node.module
                modules = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names]
            else:
                continue
            for module in modules:
                while module and module not in paths:  # a name inside a module: the module
                    module = module.rpartition(".")[0]
                if module:
                    targets.add(module)
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "sj_rga.attacks.apgd" in graph
    assert cycles(graph) == []


def test_batching_sits_below_distributed_and_metrics():
    graph = import_graph()
    assert graph["sj_rga.batching"] == set()
    assert "sj_rga.batching" in graph["sj_rga.distributed"] and "sj_rga.metrics" not in graph["sj_rga.distributed"]


@pytest.mark.parametrize("source,expected", [
    ({"a.py": "from . import b", "b.py": "def f():\n    from .a import x"}, [["pkg.a", "pkg.b"]]),
    ({"a.py": "import pkg.b", "b.py": "from .c import y", "c.py": "from pkg import VERSION"},
     [["pkg", "pkg.a", "pkg.b", "pkg.c"]]),
    ({"a.py": "from . import b", "b.py": "import os"}, []),
], ids=["function-level", "through-the-face", "none"])
def test_the_check_finds_a_cycle(tmp_path, source, expected):
    """The check itself on small packages: a cycle closed inside a function, one through ``__init__``."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from . import a\n")
    for name, text in source.items():
        (package / name).write_text(text + "\n")
    assert cycles(import_graph(package)) == expected
