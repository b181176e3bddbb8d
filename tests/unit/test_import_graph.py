"""No import cycles in the package: every `import` and `from ... import` of a c10kplan module
(at the top or inside a function: a lazy import is still a dependency) is an edge, and the
graph of c10kplan modules must have no cycle. A package's __init__ importing its own
submodules is an edge like any other; importing a submodule is not an edge to its package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "c10kplan"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    edges = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import c10kplan.a.b as x` names a.b
                target = target.rpartition(".")[0]
            if target.startswith("c10kplan") and target != name:
                edges.add(target)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_the_cycle_verify_used_to_have():
    # netns.py imported run.py's private _run_here, and run.py imported netns back; today
    # findlimit.py imports run.py (run_here, run_planned), and run.py must not import it back
    graph = import_graph()
    assert "c10kplan.verify.run" in graph["c10kplan.verify.findlimit"]
    assert "c10kplan.verify.findlimit" not in graph["c10kplan.verify.run"]
    graph["c10kplan.verify.run"] = graph["c10kplan.verify.run"] | {"c10kplan.verify.findlimit"}
    assert ["c10kplan.verify.findlimit", "c10kplan.verify.run"] in cycles(graph)


def test_lazy_and_relative_imports_are_edges_too(tmp_path):
    modules = {"c10kplan.a": tmp_path / "a.py", "c10kplan.b": tmp_path / "b.py"}
    modules["c10kplan.a"].write_text("def f():\n    from c10kplan import b\n")
    modules["c10kplan.b"].write_text("from . import a\n")
    assert _imports("c10kplan.a", modules["c10kplan.a"], modules) == {"c10kplan.b"}
    assert _imports("c10kplan.b", modules["c10kplan.b"], modules) == {"c10kplan.a"}
