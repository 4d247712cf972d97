"""Which geoha module imports which: no cycles, and dependencies point one way.

The graph is read from the source with `ast`, so it holds every import a module
can make: at module level, inside functions, and under `if TYPE_CHECKING:` (a
type a module needs is a dependency too). Relative imports are resolved.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from geoha.cli import CommandRef, build_parser

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "geoha"

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Every dotted name `module` imports, relative imports made absolute.

    `from A import B` yields `A.B` as well as `A`: B may be a module of package A.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # `from .. import x` in package a.b.c names a.b.x
                base = package.rsplit(".", node.level - 1)[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)


def deepest_module(modules: Iterable[str]) -> Callable[[str], str]:
    """The longest prefix of a dotted name that is one of `modules` ("" for none)."""
    known = set(modules)

    def resolve(name: str) -> str:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    return resolve


def import_graph(root: Path = PACKAGE) -> Graph:
    """geoha module -> the geoha modules it imports (the deepest module each name reaches)."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: Graph = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imported_names(tree, module, path.name == "__init__.py")
        graph[module] = {t for t in map(deepest_module(paths), names) if t and t != module}
    return graph


def strongly_connected(graph: Graph) -> list[set[str]]:
    """The graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return components


def shortest_cycle(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, as `[a, b, ..., a]`."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in sorted(graph[module] & component):
            if target == start:
                return [*paths[module], start]
            if target not in paths:
                paths[target] = [*paths[module], target]
                queue.append(target)
    raise AssertionError(f"no cycle in {component}")  # a component always holds one


def import_cycles(graph: Graph) -> list[list[str]]:
    """One cycle per group of modules that import each other, directly or not."""
    return sorted(shortest_cycle(graph, c) for c in strongly_connected(graph))


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


GRAPH = import_graph()

# (importer, imported, why not): every module within `importer` must not import any within
# `imported`. docs/DESIGN.md: spec -> plan -> render -> runtime | cloud.
FORBIDDEN: list[tuple[str, str, str]] = [
    ("geoha.spec", "geoha.cloud", "the core validator knows no price table or cloud rule"),
    ("geoha.cloud", "geoha.runtime", "cloud output never imports the local runtime"),
    ("geoha.render", "geoha.data", "renderers are pure: no database or secrets I/O"),
    ("geoha.render", "geoha.runtime", "renderers never import orchestration code"),
    ("geoha.render", "geoha.cloud", "the local renderers do not know the cloud"),
    ("geoha.roles", "geoha", "the role table is pure data that every layer reads"),
    ("geoha.db_access", "geoha.data", "renderers read it: no database or secrets I/O"),
    ("geoha.health", "geoha.runtime", "the runtime and the data tier both read health"),
    ("geoha.health", "geoha.data", "the runtime and the data tier both read health"),
    ("geoha.ops.incidents", "geoha", "incidents from checks are a pure fold: no I/O"),
    ("geoha.ops.monitor_status", "geoha.ops.monitor", "commands import the monitor's shapes only"),
    ("geoha.commands", "geoha.ops.monitor", "commands ask the controller; they never run it"),
    ("geoha.ops", "geoha.runtime", "the monitor gets what it reads from the controller"),
    ("geoha.ops.drill_model", "geoha.ops", "a drill's records and faults are pure: no I/O"),
    ("geoha.ops.drill_analysis", "geoha.ops.drill_clients", "figures come from the log alone"),
    ("geoha.ops.drill_analysis", "geoha.ops.drill_sampler", "figures come from the log alone"),
    ("geoha.ops.drill_report", "geoha.ops.drill_clients", "a report comes from the log alone"),
]


def test_the_graph_holds_every_module_and_local_imports() -> None:
    assert {"geoha.cli", "geoha.spec", "geoha.plan", "geoha.cloud.prices"} <= set(GRAPH)
    assert "geoha.spec" in GRAPH["geoha.plan"]


def test_relative_and_function_local_imports_are_resolved(tmp_path: Path) -> None:
    root = tmp_path / "geoha"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from . import leaf\n")
    (root / "sub" / "leaf.py").write_text("def f():\n    from ..top import x\n    return x\n")
    (root / "top.py").write_text(
        "import json\nfrom typing import TYPE_CHECKING\nfrom .sub.leaf import f\n"
        "if TYPE_CHECKING:\n    from geoha import sub\n"
    )
    graph = import_graph(root)
    assert graph == {
        "geoha": set(),
        "geoha.sub": {"geoha.sub.leaf"},
        "geoha.sub.leaf": {"geoha.top"},
        "geoha.top": {"geoha", "geoha.sub", "geoha.sub.leaf"},  # `from geoha import sub`
    }
    assert import_cycles(graph) == [["geoha.sub", "geoha.sub.leaf", "geoha.top", "geoha.sub"]]


def test_no_import_cycles() -> None:
    cycles = [" -> ".join(cycle) for cycle in import_cycles(GRAPH)]
    assert cycles == [], "import cycles: " + "; ".join(cycles)


@pytest.mark.parametrize(
    ("importer", "imported", "why"), FORBIDDEN, ids=[f"{a}-/->{b}" for a, b, _ in FORBIDDEN]
)
def test_dependencies_point_one_way(importer: str, imported: str, why: str) -> None:
    edges = sorted(
        f"{source} imports {target}"
        for source, targets in GRAPH.items()
        if within(source, importer)
        for target in targets
        if within(target, imported)
    )
    assert edges == [], f"{why}: " + "; ".join(edges)


def test_node_kinds_import_one_way() -> None:
    kinds, app_kinds = "geoha.runtime.kinds", "geoha.runtime.app_kinds"
    both = kinds in GRAPH.get(app_kinds, set()) and app_kinds in GRAPH[kinds]
    assert not both, f"{kinds} and {app_kinds} import each other"


# -- what the command line loads ---------------------------------------------------------------

HEAVY = ["pydantic", "psycopg", "httpx", "psutil", "yaml", "cryptography"]


def test_the_parser_imports_no_command_module() -> None:
    """`geoha --help` builds the whole parser; a command's module is imported when it runs."""
    code = (
        "import sys\n"
        "from geoha.cli import build_parser\n"
        "build_parser()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('geoha'))))\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    geoha_modules, heavy = result.stdout.splitlines()
    assert geoha_modules.split() == [
        "geoha",
        "geoha.cli",
        "geoha.cloud",
        "geoha.cloud.choices",
        "geoha.errors",
    ]
    assert heavy == ""


def test_every_command_runs_a_function_of_its_module() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, subparser in commands.choices.items():
        ref = subparser.get_default("run")
        assert isinstance(ref, CommandRef), name
        assert callable(ref.load()), f"{name}: {ref.module}.{ref.function}"
