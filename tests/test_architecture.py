"""The package's shape, checked from its source with ``ast`` (no imports, runs in a second):
the import graph of eqx_mp has no cycles, no module imports a private name from outside the
package that owns it, no file is longer than ~450 lines and no function (outside the contraction
kernel, eqx_mp/nn/_cg) longer than ~80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80
KERNEL = "eqx_mp.nn._cg"  # the contraction kernel: its generated programs may be long


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (path, is a package __init__)}`` for every module of eqx_mp."""
    out = {}
    for path in sorted((ROOT / "eqx_mp").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, (path, _) in MODULES.items()}


def _imports(name: str) -> list[tuple[str, str | None]]:
    """Every eqx_mp import of a module (also inside functions), as ``(module, name or None)``:
    ``from .a import b`` gives ``("pkg.a.b", None)`` if ``b`` is a module, else ``("pkg.a", "b")``."""
    is_package = MODULES[name][1]
    package = name.split(".") if is_package else name.split(".")[:-1]
    out = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "eqx_mp"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "eqx_mp":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None) if sub in MODULES else (target, a.name))
    return out


def _owner(path: str) -> str | None:
    """The package a private (``_``-prefixed) part of ``path`` is private to, or ``None``.

    ``eqx_mp.so3._common.x`` is private to ``eqx_mp.so3``; ``eqx_mp.nn.functions.mappings._f``
    (a private name in a module) to that module's package ``eqx_mp.nn.functions``.
    """
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            container = ".".join(parts[:i])
            if container in MODULES and not MODULES[container][1]:
                container = ".".join(parts[: i - 1])
            return container
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_import_graph_has_no_cycles():
    graph = {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    """The check above can fail: it reports a two-module cycle, not the module importing it."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert _cycles(graph) == [["a", "b"]]


def test_no_private_imports_across_packages():
    bad = []
    for module in MODULES:
        for target, name in _imports(module):
            full = f"{target}.{name}" if name else target
            owner = _owner(full)
            if owner is not None and module != owner and not module.startswith(owner + "."):
                bad.append(f"{module} imports {full} (private to {owner})")
    assert bad == []


def test_owner_of_private_names():
    assert _owner("eqx_mp.so3._common.cartesian_permutation") == "eqx_mp.so3"
    assert _owner("eqx_mp.nn.functions.mappings._reciprocal_mapping") == "eqx_mp.nn.functions"
    assert _owner("eqx_mp._checks.typecheck") == "eqx_mp"
    assert _owner("eqx_mp.nn.dense.Dense") is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_file_size(name):
    lines = len(MODULES[name][0].read_text().splitlines())
    assert lines <= MAX_FILE_LINES, f"{name}: {lines} lines"


def test_function_sizes():
    long = []
    for name, tree in TREES.items():
        if name == KERNEL or name.startswith(KERNEL + "."):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = node.end_lineno - first + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} (line {node.lineno}): {lines} lines")
    assert long == []
