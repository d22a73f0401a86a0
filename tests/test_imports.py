"""The import graph: no cycles (function-level imports included), dependencies point down,
and paho is imported by the runtime's MQTT layer alone.

Read from the sources with ``ast``, so an import hidden inside a function counts, and a
cycle cannot be broken by moving an import into a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [
    ROOT / line.strip()
    for line in (ROOT / "scripts" / "packages").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

# What each top-level package may import from the project (besides itself).
LAYERS = {
    "iotmon_contract": set(),
    "iotmon_runtime": {"iotmon_contract"},
    "iotmon_devices": {"iotmon_contract"},
    "iotmon_edge": {"iotmon_contract", "iotmon_runtime", "iotmon_devices"},
    "iotmon_storage": {"iotmon_contract"},
    "iotmon_registry": {"iotmon_contract", "iotmon_runtime"},
    "iotmon_alerts": {"iotmon_contract", "iotmon_runtime", "iotmon_storage", "iotmon_registry"},
    "iotmon_ingest": {"iotmon_contract", "iotmon_runtime", "iotmon_storage", "iotmon_registry"},
    "iotmon_api": {
        "iotmon_contract",
        "iotmon_runtime",
        "iotmon_storage",
        "iotmon_registry",
        "iotmon_alerts",
    },
    "iotmon_homeassistant": {"iotmon_contract", "iotmon_runtime", "iotmon_registry"},
    "iotmon_video": {"iotmon_contract", "iotmon_runtime", "iotmon_storage"},
    "iotmon_tools": None,  # the CLI, demo and benchmarks wire everything together
}
CLOUD = (
    "iotmon_storage",
    "iotmon_registry",
    "iotmon_alerts",
    "iotmon_ingest",
    "iotmon_api",
    "iotmon_homeassistant",
    "iotmon_video",
)


def _modules() -> dict[str, Path]:
    found = {}
    for distribution in DISTRIBUTIONS:
        for path in distribution.rglob("*.py"):
            if "build" in path.parts:
                continue
            relative = path.relative_to(distribution).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str = "") -> Iterator[tuple[str, list[str]]]:
    """(module, names) for every import statement, outside ``if TYPE_CHECKING:`` blocks.

    Relative imports are resolved against ``package`` (the importing module's package),
    so ``from . import workers`` is an edge like ``from iotmon_ingest import workers``.
    """
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (item for child in node.orelse for item in _imports(child, package))
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level == 0 and node.module:
                yield node.module, names
            elif node.level > 0 and package:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                yield ".".join([*base, *([node.module] if node.module else [])]), names
        yield from _imports(node, package)


def _graph() -> dict[str, set[str]]:
    """Project module → project modules it imports."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, set())
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for imported, names in _imports(ast.parse(path.read_text(), str(path)), package):
            if imported.split(".")[0] not in LAYERS:
                continue
            submodules = [f"{imported}.{n}" for n in names if f"{imported}.{n}" in MODULES]
            edges.update(submodules or [imported])
    return graph


def _external_imports(path: Path) -> set[str]:
    return {m.split(".")[0] for m, _ in _imports(ast.parse(path.read_text(), str(path)))}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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


def test_the_walk_sees_the_whole_project() -> None:
    packages = {module.split(".")[0] for module in MODULES}
    assert {"iotmon_contract", "iotmon_runtime", "iotmon_ingest", "iotmon_api"} <= packages
    assert packages <= set(LAYERS), packages - set(LAYERS)
    assert "iotmon_runtime.mqtt.client" in MODULES


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_relative_imports_are_edges_too() -> None:
    source = "def f() -> None:\n    from . import b\n    from ..c import d\n    from .e import g\n"
    assert list(_imports(ast.parse(source), "p.q")) == [
        ("p.q", ["b"]),
        ("p.c", ["d"]),
        ("p.q.e", ["g"]),
    ]


@pytest.mark.parametrize(
    "package", sorted(p for p, allowed in LAYERS.items() if allowed is not None)
)
def test_dependencies_point_down(package: str) -> None:
    allowed = LAYERS[package]
    assert allowed is not None
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in {package, *allowed}
    )
    assert wrong == []


def test_no_cloud_code_imports_the_edge_agent() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.startswith(CLOUD)
        for target in targets
        if target.startswith(("iotmon_edge", "iotmon_devices", "iotmon_tools"))
    )
    assert wrong == []


def test_only_the_runtime_mqtt_layer_imports_paho() -> None:
    importers = sorted(
        module for module, path in MODULES.items() if "paho" in _external_imports(path)
    )
    assert importers, "the walk should find the MQTT layer"
    assert all(m.startswith("iotmon_runtime.mqtt") for m in importers), importers
