"""The house stays one-way: landscapes -> optimizers -> trajectories -> jobs -> figures -> views, the CLI beside
the pages, and no import circle anywhere, late imports included.

Read from the source with ``ast`` (every ``import`` statement, at any depth: an import inside a function is
still a dependency, and one placed there to dodge a circle is still a circle), and checked by importing every
module that is not a page script.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOXES = ["landscapes", "optimizers", "trajectories", "jobs", "figures", "views"]     # each imports only leftwards
FACES = {"cli": "figures", "app": "views"}        # a face may import up to (and including) this box
ENTRY_POINTS = {"trajectories.__main__": "cli"}   # `python -m trajectories` is the CLI's door, not the engine's
OUTSIDE = {"tools"}                               # developer tools: they may use anything, nothing uses them
PAGE_SCRIPTS = {"app"}                            # run by Streamlit, not importable as plain modules


def _modules() -> dict[str, Path]:
    mods = {"app": ROOT / "app.py"}
    for top in BOXES + ["cli"] + sorted(OUTSIDE):
        for f in sorted((ROOT / top).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = f
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (a package's ``__init__`` only where a name is taken from it)."""
    out = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            subs = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in MODULES]
            targets = subs + ([prefix] if len(subs) < len(node.names) else [])
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _rank(module: str) -> int | None:
    top = module.split(".")[0]
    return BOXES.index(top) if top in BOXES else None


def test_every_import_points_left_along_the_house():
    wrong = []
    for name, deps in GRAPH.items():
        top = name.split(".")[0]
        if top in OUTSIDE:
            continue
        limit = ENTRY_POINTS.get(name)
        for dep in deps:
            dtop = dep.split(".")[0]
            if dtop in OUTSIDE:
                wrong.append(f"{name} imports the developer tool {dep}")
            elif dtop == "cli":
                if top != "cli" and limit != "cli":
                    wrong.append(f"{name} imports the CLI ({dep}); only the entry points may")
            elif name in ENTRY_POINTS:
                continue
            elif top in FACES:
                if _rank(dep) > BOXES.index(FACES[top]):
                    wrong.append(f"{name} (a face beside the pages) imports {dep}")
            elif _rank(dep) > _rank(name):
                wrong.append(f"{name} imports {dep}, which is to its right")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_is_part_of_an_import_circle():
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):                                   # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_nothing_left_of_the_pages_imports_streamlit():
    offenders = []
    for name, path in MODULES.items():
        if name.split(".")[0] in ("views", "app", *OUTSIDE):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n.split(".")[0] == "streamlit" for n in names):
                offenders.append(name)
    assert not offenders


def test_the_jobs_package_re_exports_nothing_and_the_engine_holds_no_jobs():
    init = ast.parse((ROOT / "jobs" / "__init__.py").read_text())
    assert not [n for n in ast.walk(init) if isinstance(n, (ast.Import, ast.ImportFrom))]
    engine_files = {p.stem for p in (ROOT / "trajectories").glob("*.py")}
    assert not engine_files & {"jobs", "job_results", "worker", "store", "benchmarks", "speed"}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.split(".")[0] in BOXES[:5] + ["cli"]
                                        and not n.endswith("__main__")))
def test_every_module_left_of_the_pages_imports(name):
    importlib.import_module(name)
