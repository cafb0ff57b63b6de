"""The shape of ``src/fedledger``: short modules, short functions, no import cycles, no ``assert``.

These are the limits a reviewer reads the code against (issue 30's bar). Each failure names the file, the function
or the cycle, and the number, so the fix starts from the message.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "fedledger"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "fedledger.data.prepare"
    path: Path
    is_package: bool  # an __init__.py
    tree: ast.Module
    lines: int

    @property
    def shown(self) -> str:
        return str(self.path.relative_to(SRC.parent))


def _modules() -> dict[str, Module]:
    out: dict[str, Module] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name = ".".join(parts)
        out[name] = Module(name, path, is_package, ast.parse(text, filename=str(path)), len(text.splitlines()))
    return out


MODULES = _modules()


def test_src_is_found() -> None:
    # The checks below pass vacuously on an empty tree; make sure they look at the real one.
    assert f"{PACKAGE}.exceptions" in MODULES
    assert len(MODULES) > 50


# ---------------------------------------------------------------------------------------------- sizes and asserts


def test_no_module_over_the_line_limit() -> None:
    long = [f"{m.shown}: {m.lines} lines" for m in MODULES.values() if m.lines > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method, nested ones included, with a dotted name (``Recipe.from_dict``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def test_no_function_over_the_line_limit() -> None:
    long = []
    for m in MODULES.values():
        for name, node in _functions(m.tree):
            end = node.end_lineno if node.end_lineno is not None else node.lineno
            length = end - node.lineno + 1  # from `def` (decorators excluded) to the last line of the body
            if length > MAX_FUNCTION_LINES:
                long.append(f"{m.shown}:{node.lineno} {name}: {length} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_no_assert_in_src() -> None:
    # `python -O` strips asserts, so a check that guards library behaviour must raise a named error instead.
    found = [
        f"{m.shown}:{node.lineno} assert in {_enclosing(m.tree, node.lineno)}"
        for m in MODULES.values()
        for node in ast.walk(m.tree)
        if isinstance(node, ast.Assert)
    ]
    assert not found, "assert statements in src:\n" + "\n".join(found)


def _enclosing(tree: ast.Module, line: int) -> str:
    """The innermost function whose lines hold ``line`` (or the module level)."""
    best = "module level"
    for name, node in _functions(tree):
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            best = name
    return best


# ---------------------------------------------------------------------------------------------- import cycles


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth (functions included), except those only type checkers run."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for branch in child.orelse:  # `else:` of `if TYPE_CHECKING:` runs
                yield from _imports_in(branch)
        else:
            yield from _imports(child)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports(node)


def _targets(
    module: Module, node: ast.Import | ast.ImportFrom, modules: Mapping[str, Module]
) -> Iterator[tuple[str, int]]:
    """The fedledger modules an import statement loads, with its line."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in modules:
                yield alias.name, node.lineno
        return
    if node.level:
        base = module.name.split(".")
        if not module.is_package:
            base.pop()
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
        return
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        if sub in modules:  # `from x import y` where y is a submodule: the edge goes to y itself
            yield sub, node.lineno
        elif source in modules:
            yield source, node.lineno


def _import_graph(modules: Mapping[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported fedledger module: line of the first import of it}."""
    graph: dict[str, dict[str, int]] = {}
    for m in modules.values():
        edges: dict[str, int] = {}
        for node in _imports(m.tree):
            for target, line in _targets(m, node, modules):
                if target != m.name:
                    edges.setdefault(target, line)
        graph[m.name] = edges
    return graph


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str, within: set[str]) -> list[str]:
    """The shortest import path from ``start`` back to itself, inside one strongly connected component."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child not in within:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest cycle through each module of every cycle-bearing component, without repeats."""
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for component in _strongly_connected(graph):
        for start in component:
            cycle = _shortest_cycle(graph, start, set(component))
            # The same cycle from another starting module is a rotation: key it by its smallest rotation.
            body = cycle[:-1]
            k = body.index(min(body))
            key = tuple(body[k:] + body[:k])
            if key not in seen:
                seen.add(key)
                cycles.append([*key, key[0]])
    return cycles


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join([*steps, cycle[-1]]) + f"  [{len(cycle) - 1} modules]"


def test_no_import_cycles() -> None:
    graph = _import_graph(MODULES)
    cycles = _cycles(graph)
    assert not cycles, "import cycles among fedledger modules:\n" + "\n".join(_describe(graph, c) for c in cycles)


# ---------------------------------------------------------------------------------------------- the checker itself


def _graph_of(sources: dict[str, str]) -> dict[str, dict[str, int]]:
    """The import graph of a made-up package (a name ending in "/" is a package's ``__init__``)."""
    fake = {}
    for key, text in sources.items():
        name = key.removesuffix("/")
        path = SRC / (name.replace(".", "/") + ("/__init__.py" if key.endswith("/") else ".py"))
        fake[name] = Module(name, path, key.endswith("/"), ast.parse(text), len(text.splitlines()))
    return _import_graph(fake)


def test_cycle_checker_finds_cycles_through_functions_and_submodules() -> None:
    graph = _graph_of(
        {
            "fedledger/": "",
            "fedledger.a": "from fedledger import b\n",  # b is a submodule: an edge to fedledger.b
            "fedledger.b": "def f():\n    from . import c\n",  # in a function, relative: still an edge
            "fedledger.c": "import fedledger.a\n",
            "fedledger.d": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fedledger.e import X\n",
            "fedledger.e": "from fedledger.d import Y\n",
        }
    )
    assert _cycles(graph) == [["fedledger.a", "fedledger.b", "fedledger.c", "fedledger.a"]]
    assert graph["fedledger.d"] == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("def f():\n    pass\n", 2), ("@decorator\ndef f(\n    x,\n):\n    return x\n", 4)],
)
def test_function_length_counts_from_def_to_the_last_line(text: str, expected: int) -> None:
    ((_, node),) = _functions(ast.parse(text))
    assert (node.end_lineno or 0) - node.lineno + 1 == expected
