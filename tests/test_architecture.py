"""The code's shape, checked: layers import one way, no import cycles (function-level imports included), no module
a newcomer cannot read in one sitting.

The graph is built from the source text (ast), so it sees the imports a function makes when it runs, which is
how the two cycles the review found (app <-> export, evaluate <-> export) were hidden.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "training", "studio", "installation")
# Who may import whom: the runtime never needs training code; the studio tools (inspection, model card) sit on top
# and render through the piece's own code; nothing imports them.
ALLOWED = {
    "models": {"models"},
    "training": {"models", "training"},
    "studio": {"models", "training", "installation", "studio"},
    "installation": {"models", "installation"},
}
MAX_LINES = 600


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its text, each resolved to the deepest module that exists."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    graph = {name: imported_modules(name, path, known) for name, path in files.items()}
    # A package's __init__ re-exporting its own submodules is how a package presents itself, not a cycle.
    return {name: {target for target in targets if not (name in PACKAGES or target.startswith(name + "."))}
            for name, targets in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
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
                    components.append(sorted(component))
    return components


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_imports_resolve_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "a.py"
    module.write_text("def f():\n    from pkg import b\n    from .c import thing\n")
    found = imported_modules("pkg.a", module, {"pkg", "pkg.a", "pkg.b", "pkg.c"})
    assert found == {"pkg", "pkg.b", "pkg.c"}


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_layers_import_one_way():
    wrong = [f"{name} imports {target}" for name, targets in import_graph().items() for target in sorted(targets)
             if target.split(".")[0] not in ALLOWED[name.split(".")[0]]]
    assert wrong == []


@pytest.mark.parametrize("folder", [*PACKAGES, "tests", "bench"])
def test_no_module_over_600_lines(folder):
    long = [f"{path.relative_to(ROOT)}: {count} lines" for path in sorted((ROOT / folder).rglob("*.py"))
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert long == []
