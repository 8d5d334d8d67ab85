"""Imports go one way: data -> outcomes -> models -> report -> cli, and never in a cycle
(docs/api.md, "Layers"). Read from the source with :mod:`ast`, so imports inside functions
(lazy imports) count as much as those at the top of a module."""

from __future__ import annotations

import ast
from pathlib import Path

import analysis

SRC = Path(analysis.__file__).resolve().parent

#: layer of each top-level part of the package; a module may import only its own layer or lower
LAYERS = {
    "problems": 0, "schema": 0, "instruments": 0, "anonymisation": 0, "drugs": 0, "reading": 0, "validation": 0,
    "dataset": 0, "resources": 0, "_lazy": 0,
    "simulation": 1,  # builds datasets (data layer) with the truth it states
    "io": 0,  # reads other formats into datasets (data layer; validate suggests its commands)
    "outcomes": 2,
    "_kernel": 3,
    "survival": 4,
    "response": 5,
    "_table_one": 6, "adjuncts": 6, "effects": 6, "imputation": 6,
    "report": 7,
    "cli": 8,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports (resolved to modules where possible)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "analysis":
                    out.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "analysis":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            out.update(subs if subs and len(subs) == len(node.names) else [target])
    return {m for m in out if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {n: _imports(n, p, known) for n, p in mods.items()}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_part_has_a_layer():
    parts = {_part(m) for m in _modules()} - {None}
    assert parts <= set(LAYERS), f"add these to LAYERS (and to docs/api.md): {sorted(parts - set(LAYERS))}"


def test_no_arrow_goes_up_the_layers():
    bad = []
    for mod, targets in _graph().items():
        src = _part(mod)
        if src is None:  # analysis/__init__.py: the public face, on top
            continue
        for t in targets:
            dst = _part(t)
            if dst is not None and LAYERS[dst] > LAYERS[src]:
                bad.append(f"{mod} imports {t}")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = {m: {t for t in ts if _part(t) is not None} for m, ts in _graph().items() if _part(m) is not None}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    # a package's __init__ importing its modules, which import the package's siblings through
    # it, is not a cycle of the code; a cycle between two modules of the package is
    real = [[m for m in c if not _is_package(m)] for c in cycles]
    real = [c for c in real if len(c) > 1 and _cycle_without_packages(graph, c)]
    assert not real, f"import cycles: {real}"


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def _cycle_without_packages(graph: dict[str, set[str]], comp: list[str]) -> bool:
    """Whether the modules of ``comp`` form a cycle by direct imports among themselves."""
    members = set(comp)
    sub = {m: graph[m] & members for m in comp}
    seen: set[str] = set()
    path: set[str] = set()

    def dfs(v: str) -> bool:
        seen.add(v)
        path.add(v)
        for w in sub[v]:
            if w in path or (w not in seen and dfs(w)):
                return True
        path.discard(v)
        return False

    return any(dfs(m) for m in comp if m not in seen)


def test_no_module_is_shadowed_by_a_function_of_its_name():
    """``analysis.response.logistic`` is the function; the module behind it has its own
    (private) name, so ``import analysis.x.y`` and ``analysis.x.y`` never disagree."""
    import importlib
    import sys

    shadowed = []
    for name in sorted(_modules()):
        module = importlib.import_module(name)
        for attr in dir(module):
            full = f"{name}.{attr}"
            if full in sys.modules and getattr(module, attr) is not sys.modules[full]:
                shadowed.append(f"{full} ({type(getattr(module, attr)).__name__})")
    assert not shadowed, f"modules shadowed by a same-named attribute: {shadowed}"
