"""Imports inside the package run one way: no module of ``lightning_pose`` imports, directly or
through others, a module that imports it back.

Read from the source with ``ast`` (nothing is imported): every ``import lightning_pose...`` and
``from lightning_pose... import ...`` (relative ones too), at module level or inside a function,
is an edge from the module to the module it names (``from package import module`` names the
module). Imports under ``if TYPE_CHECKING:`` are left out: they never run. An import of a
package's ``__init__`` is an edge to the package only, not to its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lightning_pose

PACKAGE = Path(lightning_pose.__file__).parent


def module_name(root: Path, path: Path) -> str:
    """``root/a/b.py`` -> ``lightning_pose.a.b``; ``root/a/__init__.py`` -> ``lightning_pose.a``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Dotted names of the ``lightning_pose`` modules (or their attributes) ``tree`` imports
    anywhere except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit_node(other)
            else:
                visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.update(f"{source}.{a.name}" for a in node.names)
        else:
            visit(node)

    visit(tree)
    return {name for name in found if name.split(".")[0] == "lightning_pose"}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (see the module docstring)."""
    files = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for name in imported_names(tree, module, path.name == "__init__.py"):
            while name and name not in files:  # package.module.attribute -> package.module
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan 1972), each sorted:
    the module groups that import each other, directly or through others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(import_graph(PACKAGE))
    assert not found, "modules that import each other: " + "; ".join(" <-> ".join(c) for c in found)


def test_metrics_import_in_layers() -> None:
    """``lightning_pose.metrics``: the functional layer imports no metric class, no class
    imports the declared metrics, and only the package's ``__init__`` imports the protocol."""
    graph = import_graph(PACKAGE)
    metrics = {m: d for m, d in graph.items() if m.startswith("lightning_pose.metrics.")}
    functional = [m for m in metrics if m.startswith("lightning_pose.metrics.functional")]
    assert functional, "no lightning_pose.metrics.functional modules found"
    for module in [*functional, "lightning_pose.metrics.utilities"]:
        inside = {d for d in graph[module] if d.startswith("lightning_pose.metrics")}
        allowed = {"lightning_pose.metrics.utilities", *functional}
        assert inside <= allowed, f"{module} imports {sorted(inside - allowed)}"
    protocol = "lightning_pose.metrics.protocol"
    importers = sorted(m for m, d in metrics.items() if protocol in d)
    assert importers == [], f"{importers} import {protocol} (it is the top layer)"


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"a.py": "import lightning_pose.b\n", "b.py": "x = 1\n"}, []),
        (
            {"a.py": "from lightning_pose import b\n", "b.py": "def f():\n    from . import a\n"},
            [["lightning_pose.a", "lightning_pose.b"]],
        ),
        (
            {
                "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from lightning_pose.b import B\n",
                "b.py": "from lightning_pose.a import A\n",
            },
            [],
        ),
        (
            {
                "a.py": "from lightning_pose.b import f\n",
                "b.py": "from lightning_pose.c import g\n",
                "c.py": "import lightning_pose.a\n",
            },
            [["lightning_pose.a", "lightning_pose.b", "lightning_pose.c"]],
        ),
    ],
)
def test_cycles_known_answers(tmp_path: Path, sources: dict[str, str], expected) -> None:
    root = tmp_path / "lightning_pose"
    root.mkdir()
    (root / "__init__.py").write_text("")
    for name, text in sources.items():
        (root / name).write_text(text)
    assert cycles(import_graph(root)) == expected
