"""The rules docs/architecture.md states, checked on the source.

* No import cycles between gdjax's modules (module-level imports).
* No function-local imports of gdjax modules (they hid the cycles).
* A module imports another's private (``_``) names only from the private
  core (a module whose dotted name has a part starting with ``_``).
* Numeric modules draw, report and print nothing: they import neither
  matplotlib nor tqdm nor gdjax's plot, report, runs or cli, and never call
  ``print``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "gdjax"

NUMERIC = (
    "gdjax._chunks",
    "gdjax._engine",
    "gdjax._orbits",
    "gdjax._registry",
    "gdjax._validate",
    "gdjax.attractors",
    "gdjax.continuation",
    "gdjax.descent",
    "gdjax.fractal",
    "gdjax.lenet",
    "gdjax.maps.config",
    "gdjax.maps.critical",
    "gdjax.maps.orbit_labels",
    "gdjax.maps.runner",
    "gdjax.maps.summary",
    "gdjax.optimizers",
    "gdjax.schedules",
    "gdjax.sharpness",
    "gdjax.surfaces",
    "gdjax.trainability",
)
"""Modules (and packages) that compute: arrays in, typed results out
(``gdjax.maps.tiles`` is the sink that streams a map to disk)."""

DRAWING = ("matplotlib", "tqdm", "gdjax.plot", "gdjax.report", "gdjax.runs", "gdjax.cli")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str, node: ast.AST) -> list[tuple[str, tuple[str, ...], int]]:
    """(module imported, names taken from it, line) for an import statement."""
    if isinstance(node, ast.Import):
        return [(a.name, (), node.lineno) for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            pkg = _package(name).split(".")
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
        out = []
        for a in node.names:
            sub = f"{base}.{a.name}"
            if sub in MODULES:  # from gdjax import basins: the module gdjax.basins
                out.append((sub, (), node.lineno))
            else:
                out.append((base, (a.name,), node.lineno))
        return out
    return []


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(), str(MODULES[name]))


def _top_level_imports(name: str):
    """Imports that run when the module is imported (not those in functions)."""
    found = []

    def visit(body):
        for node in body:
            found.extend(_imports(name, node))
            if isinstance(node, ast.If | ast.Try):  # guarded imports still run at import
                visit(node.body)
                visit(getattr(node, "orelse", []))
                visit(getattr(node, "finalbody", []))
                for h in getattr(node, "handlers", []):
                    visit(h.body)

    visit(_tree(name).body)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name in MODULES:
        deps = set()
        for mod, _, _ in _top_level_imports(name):
            # importing a.b.c runs a and a.b first
            parts = mod.split(".")
            for i in range(1, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep in MODULES and dep != name:
                    deps.add(dep)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def _is_package_edge(a: str, b: str) -> bool:
    """A package's __init__ re-exporting its own submodule, which imports a
    sibling through the package: Python runs these in a fixed order, and
    they are not a cycle between jobs."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycles():
    graph = _graph()
    # a submodule importing its own package (gdjax.x importing gdjax) runs the
    # package first; that is the package's business, not a cycle between jobs
    pruned = {v: {w for w in ws if not _is_package_edge(v, w)} for v, ws in graph.items()}
    assert _cycles(pruned) == []


def test_no_function_local_imports_of_gdjax():
    found = []
    for name in MODULES:
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    for mod, _, line in _imports(name, inner):
                        if mod == "gdjax" or mod.startswith("gdjax."):
                            found.append(f"{name}:{line} imports {mod}")
    assert sorted(set(found)) == []


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def test_private_names_come_only_from_the_private_core():
    found = []
    for name in MODULES:
        tree = _tree(name)
        imported = {}  # local name -> gdjax module
        for node in ast.walk(tree):
            for mod, names, line in _imports(name, node):
                if not mod.startswith("gdjax"):
                    continue
                for n in names:
                    if n.startswith("_") and not _private(mod) and mod != name:
                        found.append(f"{name}:{line} takes {n} from {mod}")
                if not names and isinstance(node, ast.ImportFrom):
                    alias = next(a for a in node.names if mod.endswith(a.name))
                    imported[alias.asname or alias.name] = mod
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
                and not _private(imported[node.value.id])
            ):
                found.append(f"{name}:{node.lineno} reads {imported[node.value.id]}.{node.attr}")
    assert sorted(set(found)) == []


@pytest.mark.parametrize("numeric", NUMERIC)
def test_numeric_modules_draw_and_print_nothing(numeric):
    names = [n for n in MODULES if n == numeric or n.startswith(numeric + ".")]
    assert names, f"{numeric} is not a module of gdjax"
    found = []
    for name in names:
        tree = _tree(name)
        for node in ast.walk(tree):
            for mod, _, line in _imports(name, node):
                if any(mod == d or mod.startswith(d + ".") for d in DRAWING):
                    found.append(f"{name}:{line} imports {mod}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                found.append(f"{name}:{node.lineno} prints")
    assert found == []


def test_the_rules_catch_what_they_are_for(tmp_path, monkeypatch):
    """The checks above fail on a cycle, a local import and a private name."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    snippet = ast.parse("def f():\n    from gdjax import basins\n")
    local = [
        mod
        for node in ast.walk(snippet)
        if isinstance(node, ast.FunctionDef)
        for inner in ast.walk(node)
        for mod, _, _ in _imports("gdjax.x", inner)
    ]
    assert local == ["gdjax.basins"]
    assert _imports("gdjax.x", ast.parse("from gdjax.basins import _x").body[0]) == [
        ("gdjax.basins", ("_x",), 1)
    ]
    assert not _private("gdjax.basins") and _private("gdjax._engine")
    assert _private("gdjax.plot._style")


def test_importing_gdjax_draws_nothing():
    """``import gdjax`` (the numeric library) loads neither matplotlib nor
    gdjax.plot: a script's own pyplot backend stays its own."""
    import subprocess
    import sys

    code = (
        "import sys, gdjax; "
        "print(sorted(m for m in ('matplotlib', 'gdjax.plot') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
