"""The package's architecture, checked on its import graph (as import-linter does in CI,
but here over every import statement, function-level ones included)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "rnamotif_data"
#: third-party modules that are extras: imported only through ``common.extras.require``
EXTRAS = {"torch", "dask", "distributed", "sklearn", "matplotlib", "parasail", "rnapolis", "h5py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an imported name refers to (``a.b.c`` may be module ``a.b`` + attribute)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(tree: ast.Module):
    """(node, target module, imported names, at module level) for every project import."""
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rnamotif_data":
            for alias in node.names:
                target = _resolve(f"{node.module}.{alias.name}") or _resolve(node.module)
                yield node, target, alias.name, id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "rnamotif_data":
                    yield node, _resolve(alias.name), None, id(node) in top


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, tree in MODULES.items():
        if name == "rnamotif_data.__main__":
            continue
        for _, target, _, _ in _imports(tree):
            if target and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan 1972, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = defaultdict(set)
    for src, targets in _graph().items():
        for dst in targets:
            a, b = src.split(".")[:2], dst.split(".")[:2]
            if a != b and len(a) == 2 and len(b) == 2:
                packages[".".join(a)].add(".".join(b))
    assert _cycles(packages) == []


def test_no_private_name_is_used_across_modules():
    bad = []
    for name, tree in MODULES.items():
        aliases = {}
        for node, target, imported, _ in _imports(tree):
            if imported and imported.startswith("_") and not imported.startswith("__") and target != name:
                bad.append(f"{name}: imports {imported} from {target}")
            if isinstance(node, ast.ImportFrom) and imported and _resolve(f"{node.module}.{imported}") == f"{node.module}.{imported}":
                aliases[next(a.asname or a.name for a in node.names if a.name == imported)] = imported
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{name}: uses {node.value.id}.{node.attr}")
            # a private attribute of an object of another class (obj.x._y, other._y): only self and
            # cls reach private members
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                bad.append(f"{name}:{node.lineno}: uses {ast.unparse(node)}")
    assert bad == []


#: modules allowed to import project modules inside a function: the command's front door
#: (rnamotif_data/cli/__init__.py) imports each program only when its command runs, so
#: ``rnamotif --help`` starts fast and a missing extra is one line, not a traceback at start;
#: those imports are plain ``from rnamotif_data.cli import build`` statements, which this
#: test's graph, import-linter and grimp all see, so they hide no cycle
LAZY_FRONT_DOOR = {"rnamotif_data.cli"}


def test_no_project_import_hides_inside_a_function():
    """Hidden imports hide cycles; only the front door imports lazily (LAZY_FRONT_DOOR)."""
    hidden = [f"{name}:{node.lineno}" for name, tree in MODULES.items()
              for node, _, _, top in _imports(tree) if not top and name not in LAZY_FRONT_DOOR]
    assert hidden == []
    lazy = [target for name in LAZY_FRONT_DOOR for _, target, _, top in _imports(MODULES[name]) if not top]
    assert lazy, "the front door imports its programs lazily; if it no longer does, drop the exemption"
    assert all(t.startswith("rnamotif_data.cli.") for t in lazy), lazy


def test_extras_are_imported_only_through_require():
    """A missing extra gives a one-line error naming it, never a bare ModuleNotFoundError."""
    bad = []
    for name, tree in MODULES.items():
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                guarded |= {id(n) for n in ast.walk(node) if n not in node.orelse and isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for mod in mods:
                if mod.split(".")[0] in EXTRAS and id(node) not in guarded:
                    # allowed right after a require() of the same extra in the same function
                    bad.append(f"{name}:{node.lineno} imports {mod}")
    # the only direct imports are the ones that follow require() of their extra
    allowed = {"rnamotif_data.release.audit", "rnamotif_data.pipeline.runner", "rnamotif_data.rna.annotate"}
    offenders = [b for b in bad if b.split(":")[0] not in allowed]
    assert offenders == []
    for name in allowed:
        assert "require(" in (PACKAGE / Path(*name.split(".")[1:])).with_suffix(".py").read_text(), name


@pytest.mark.parametrize("package", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()))
def test_each_package_says_what_it_owns_and_may_import(package):
    doc = ast.get_docstring(MODULES[f"rnamotif_data.{package}"])
    assert doc and len(doc) > 80, package
    if package not in ("cli", "testing"):
        assert re.search(r"(May import|Imports nothing|imports nothing)", doc), package


def test_import_linter_contracts_name_every_package():
    """The layers contract in pyproject.toml lists every sub-package, so a new one cannot
    slip outside the rules."""
    text = (REPO / "pyproject.toml").read_text()
    layers = re.search(r'layers = \[(.*?)\]', text, re.S).group(1)
    listed = set(re.findall(r'"rnamotif_data\.(\w+)"', layers))
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= listed, packages - listed


#: the most lines a function of the package may span (``def`` to its last line, docstring included)
MAX_FUNCTION_LINES = 80


def _long_functions(tree: ast.Module, limit: int) -> list[tuple[str, int]]:
    """``(name, lines)`` of each function (methods and nested ones included) of ``tree``
    spanning more than ``limit`` lines, ``def`` line to last line."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_the_function_measure_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert _long_functions(ast.parse(f"def f():\n{body}\n"), MAX_FUNCTION_LINES) == [("f", MAX_FUNCTION_LINES + 1)]
    assert _long_functions(ast.parse(f"def f():\n{body}\n"), MAX_FUNCTION_LINES + 1) == []


def test_no_function_is_longer_than_80_lines():
    """A function reads on one screen: every function of the package spans at most
    :data:`MAX_FUNCTION_LINES` lines (``def`` to last line, docstring included); longer
    work is split into named steps."""
    long = [f"{module}.{name} ({n} lines)" for module, tree in MODULES.items()
            for name, n in _long_functions(tree, MAX_FUNCTION_LINES)]
    assert not long, long
