"""The package's layers, read from its source with ``ast``: no import circles, no import of a
layer above, no private name of another module."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fibjax"

# From the bottom up; a module may import from its own layer and those below it. The package's
# own ``__init__`` and ``__main__`` stand above every layer.
LAYERS = (
    ("results", "stats"),  # result files and provenance; statistics on arrays (no JAX)
    ("data",),  # the scaled sequence and its windows
    ("models",),  # Flax modules, their recurrences and the registries of parts
    ("cluster",),  # processes across hosts: jax.distributed, the supervisor
    ("training",),  # the training program, many seeds and devices, caches, runtime
    ("studies",),  # the comparison and the sweep: arms trained and saved
    ("reports",),  # tables, reports and figures of saved studies
    ("api",),  # the studies as Python functions
    ("cli",),  # the command line
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
TOP = len(LAYERS)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = modules()


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    return RANK[parts[1]]


def resolve(name: str) -> str:
    """The package's module that an imported name lives in (``fibjax.a.b`` or its package)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(path: Path) -> list[tuple[str, str, int]]:
    """``(module, name, line)`` for every fibjax import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.startswith("fibjax")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fibjax"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:  # a module imported from its package
                    found.append((full, "", node.lineno))
                else:
                    found.append((resolve(node.module), alias.name, node.lineno))
    return found


def graph() -> dict[str, set[str]]:
    edges = {module: set() for module in MODULES}
    for module, path in MODULES.items():
        for target, _, _ in imports(path):
            target = resolve(target)
            if target != module and not module.startswith(target + "."):
                edges[module].add(target)  # a package's __init__ runs before its modules
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer(module)  # a KeyError names a folder missing from LAYERS


def test_no_import_circles():
    assert cycles(graph()) == []


def test_the_circle_finder_finds_circles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_from_its_layer_or_below(module):
    above = [
        f"line {line}: {target}"
        for target, _, line in imports(MODULES[module])
        if layer(resolve(target)) > layer(module)
    ]
    assert above == [], f"{module} imports from a layer above it"


def private_uses(path: Path) -> list[str]:
    """Private names taken from another fibjax module: imported, or read as an attribute."""
    tree = ast.parse(path.read_text(), str(path))
    bound = set()  # local names of imported fibjax modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fibjax"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    bound.add(alias.asname or alias.name)
                elif alias.name.startswith("_"):
                    found.append(f"line {node.lineno}: {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_of_another_module(module):
    assert private_uses(MODULES[module]) == []


def test_the_private_name_check_finds_them(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from fibjax.data import _check_int\nfrom fibjax import data\ndata._x\n")
    assert private_uses(path) == ["line 1: _check_int", "line 3: data._x"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_short(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= 650, f"{module} has {lines} lines; split it by what its parts hold"


def test_every_module_imports():
    for module in MODULES:
        assert importlib.util.find_spec(module) is not None
