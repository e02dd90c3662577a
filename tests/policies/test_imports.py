"""The policies package depends one way: no module imports another that imports it back,
counting imports inside functions (the first version hid a circle between gates and
approvals there). The registry's circles are the next to go (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import loraledger.policies
import networkx as nx

PACKAGE = Path(loraledger.policies.__file__).parent


def imports_within(package: Path, name: str) -> nx.DiGraph:
    """Module -> module edges for every import of a sibling, at any depth of the code."""
    graph = nx.DiGraph()
    for path in package.glob("*.py"):
        module = path.stem
        graph.add_node(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level == 1:
                    found = target.split(".")[0] if target else None
                    names = [a.name for a in node.names] if not target else [found]
                elif target.startswith(f"{name}."):
                    names = [target.removeprefix(f"{name}.").split(".")[0]]
                else:
                    continue
                for sibling in names:
                    if sibling and (package / f"{sibling}.py").exists():
                        graph.add_edge(module, sibling)
    return graph


def test_no_import_circle_between_policy_modules() -> None:
    graph = imports_within(PACKAGE, "loraledger.policies")
    assert ("approvals", "gates") in graph.edges and ("gates", "tally") in graph.edges
    assert list(nx.simple_cycles(graph)) == []


def test_the_check_finds_a_circle(tmp_path: Path) -> None:
    # The control: the same check on a package whose two modules import each other.
    (tmp_path / "a.py").write_text("def f():\n    from .b import g\n")
    (tmp_path / "b.py").write_text("from .a import f\n")
    cycles = nx.simple_cycles(imports_within(tmp_path, "x"))
    assert [sorted(cycle) for cycle in cycles] == [["a", "b"]]
