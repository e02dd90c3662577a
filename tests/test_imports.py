"""The project depends one way: no module imports another that imports it back, at any
depth of the code (imports inside functions and under ``TYPE_CHECKING`` count: the first
version hid a circle between gates and approvals inside functions, and ten registry
modules formed one circle through ``TYPE_CHECKING``), and the packages themselves form
no circle (docs/architecture.md draws their order)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The installed package of each folder (pyproject.toml's package-dir).
PACKAGES = {
    "loraledger": ROOT / "loraledger",  # errors, atomic, inputs, paths, terminal, yamlfile
    "loraledger.cli": ROOT / "loraledger" / "cli",
    "loraledger.registry": ROOT / "registry",
    "loraledger.trainer": ROOT / "trainer",
    "loraledger.harness": ROOT / "harness",
    "loraledger.policies": ROOT / "policies",
    "loraledger.dashboard": ROOT / "dashboard",
}


def modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Dotted name -> file of every module (suite folders hold data, not modules)."""
    found: dict[str, Path] = {}
    for package, folder in packages.items():
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder)
            if "suites" in relative.parts or any(
                p for p in relative.parts if p in packages and p != package
            ):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if package == "loraledger" and parts and f"loraledger.{parts[0]}" in packages:
                continue
            found[name] = path
    return found


def import_graph(packages: dict[str, Path]) -> nx.DiGraph:
    """Module -> module edges for every import of a project module, at any depth."""
    known = modules(packages)
    graph = nx.DiGraph()
    for name, path in known.items():
        graph.add_node(name)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    stem = ".".join([*base, node.module] if node.module else base)
                else:
                    stem = node.module or ""
                targets = [f"{stem}.{alias.name}" for alias in node.names] + [stem]
            for target in targets:
                # the longest known module the import names
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph.add_edge(name, target)
                    break
    return graph


def package_of(module: str) -> str:
    if module == "loraledger.__main__":  # `python -m loraledger`: the CLI's entry
        return "loraledger.cli"
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in PACKAGES else parts[0]


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph(PACKAGES)


def test_no_import_circle_between_modules(graph: nx.DiGraph) -> None:
    assert graph.number_of_edges() > 100  # the check sees the real imports
    edges = set(graph.edges)
    assert ("loraledger.policies.approvals", "loraledger.policies.gates") in edges
    assert ("loraledger.policies.gates", "loraledger.policies.tally") in edges
    assert ("loraledger.registry.registry", "loraledger.registry.adapters") in edges
    assert list(nx.simple_cycles(graph)) == []


def test_no_circle_between_packages(graph: nx.DiGraph) -> None:
    packages = nx.DiGraph()
    for a, b in graph.edges:
        if package_of(a) != package_of(b):
            packages.add_edge(package_of(a), package_of(b))
    assert ("loraledger.policies", "loraledger.harness") in packages.edges
    assert list(nx.simple_cycles(packages)) == []


# docs/architecture.md's layers, top to bottom: a package imports only later ones.
LAYERS = [
    "loraledger.cli",
    "loraledger.dashboard",
    "loraledger.policies",
    "loraledger.harness",
    "loraledger.trainer",
    "loraledger.registry",
    "loraledger",
]


def test_packages_import_only_the_layers_below_them(graph: nx.DiGraph) -> None:
    upward = sorted(
        (a, b) for a, b in graph.edges if LAYERS.index(package_of(a)) > LAYERS.index(package_of(b))
    )
    assert upward == []


# docs/architecture.md's order of the registry's modules: each imports only its own line
# or the lines above it.
REGISTRY_LAYERS = [
    "models db store keys refs signing manifest merkle permissions schema dialect adapter_dir "
    "synthetic crosscheck trust s3 published",
    "audit postgres",
    "statements dsse",
    "core",
    "identities datasets base_models deployments listings policy_versions",
    "attestations",
    "adapters derivations",
    "evaluations approvals gate_checks",
    "registry",
    "copying",
]


def test_the_registry_depends_in_the_documented_order(graph: nx.DiGraph) -> None:
    level = {
        f"loraledger.registry.{name}": index
        for index, line in enumerate(REGISTRY_LAYERS)
        for name in line.split()
    }
    level["loraledger.registry"] = len(REGISTRY_LAYERS)  # the package's __init__
    inside = [m for m in graph if m.startswith("loraledger.registry")]
    assert sorted(inside) == sorted(level)  # a new module must be placed in a layer
    upward = sorted(
        (a, b) for a, b in graph.edges if a in level and b in level and level[b] > level[a]
    )
    assert upward == []


def test_collections_never_import_the_facade(graph: nx.DiGraph) -> None:
    # Each collection receives the core and its named siblings; only the facade (and the
    # package's own __init__) builds them.
    importers = set(graph.predecessors("loraledger.registry.registry"))
    assert {m for m in importers if m.startswith("loraledger.registry")} == {
        "loraledger.registry",
        "loraledger.registry.copying",  # the whole registry, copied: above the facade
    }


def test_the_check_finds_a_circle(tmp_path: Path) -> None:
    # The control: the same check on a package whose two modules import each other, one
    # inside a function and one under TYPE_CHECKING.
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("def f():\n    from .b import g\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from x.a import f\n"
    )
    cycles = nx.simple_cycles(import_graph({"x": tmp_path}))
    assert [sorted(cycle) for cycle in cycles] == [["x.a", "x.b"]]


def test_the_dashboard_holds_no_sql() -> None:
    # Its listings are the registry's read-models (registry/listings.py): a schema change
    # must break them there, next to the schema, not unseen in a page.
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b", re.S)
    found = []
    for path in (ROOT / "dashboard").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if sql.search(node.value):
                    found.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.Attribute) and node.attr in {"db", "execute", "duckdb"}:
                found.append(f"{path.name}:{node.lineno}")
    assert found == []
    assert sql.search("SELECT name FROM adapter_versions WHERE true")  # the check's control
