"""The package's modules import each other without a cycle, counting the imports inside functions too.

A cycle works only as long as one side imports the other lazily (inside a function), and it hides which module is the
lower layer; issue 24 broke the last one (advtrain.downloads <-> advtrain.sources). Read from the source with
``ast``: nothing is imported, so this takes milliseconds.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"
PACKAGE = "advtrain"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """{module: the package's modules it imports anywhere in its body}. ``from a.b import c`` is an edge to ``a.b.c``
    when that is a module, else to ``a.b``. A package's ``__init__`` that a submodule's import runs implicitly is not
    an edge (Python imports the package first, so that is no cycle)."""
    paths = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, one level up per extra dot
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names]
            else:
                continue
            edges.update(t for t in targets if t in paths and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per back edge a depth-first search meets."""
    found, state, stack = [], {}, []  # state: 1 = on the stack, 2 = finished

    def visit(node):
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                found.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_graph_sees_imports_at_every_depth():
    graph = import_graph()
    assert "advtrain.attacks.run" in graph["advtrain.attacks"]  # from advtrain.attacks.run import (...) in __init__
    assert "advtrain.attacks.resources" in graph["advtrain.attacks.run"]  # from advtrain.attacks import resources
    assert "advtrain.downloads" in graph["advtrain.lca.pos_data"]  # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_package_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (move what both sides need into a lower module):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found)
