"""The floors of the code, checked from the source: imports go down, never up, never in a circle.

    cli                      the command line, on top
    cluster  screeners       the review's work (expansion, deduplication; screening)
    db       connectors      the store and its formats; the outside services
    base                     errors, the Record, service names, the version

A package may import its own floor's package and any floor below, except its
neighbour on the same floor (`db` and `connectors` stand side by side; so do
`cluster` and `screeners`, apart from the demo, which runs a whole review).
Every import counts, including those inside functions, because a lazy import
still ties the two modules together. Nothing imports `cli` but the tests and
benchmarks, which are not scanned.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("base", "connectors", "db", "screeners", "cluster")
TOP_MODULES = ("cli",)

#: package -> the packages its modules may import (besides itself)
ALLOWED = {
    "base": set(),
    "connectors": {"base"},
    "db": {"base"},
    "screeners": {"db", "connectors", "base"},
    "cluster": {"db", "connectors", "base"},
    "cli": {"cluster", "screeners", "db", "connectors", "base"},
}
#: modules (by name prefix) allowed one more package: the demo drives screening too
EXTRA = {"cluster.demo": {"screeners"}}


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the project's packages and top-level modules."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    for name in TOP_MODULES:
        if (root / f"{name}.py").exists():
            out[name] = root / f"{name}.py"
    return out


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The project modules one import statement names."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            here = here[:len(here) - (node.level - 1)]
            base = ".".join(here + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        # `import db.store` names db.store; `from db import formats` names db.formats
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """module -> {imported project module: line of the first such import}, every import
    in the file (module level, inside functions and under TYPE_CHECKING alike)."""
    files = module_files(root)
    known = set(files)
    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, module, path.name == "__init__.py", known):
                    if target != module:
                        edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def _package(module: str) -> str:
    return module.split(".")[0]


def floor_violations(graph: dict[str, dict[str, int]], root: Path) -> list[str]:
    """One line per import that runs up a floor or across to a neighbour."""
    files = module_files(root)
    out = []
    for module, edges in sorted(graph.items()):
        pkg = _package(module)
        allowed = {pkg} | ALLOWED[pkg]
        allowed |= next((v for k, v in EXTRA.items()
                         if module == k or module.startswith(k + ".")), set())
        for target, line in sorted(edges.items()):
            if _package(target) not in allowed:
                where = files[module].relative_to(root)
                out.append(f"{where}:{line}: {module} imports {target}")
    return out


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per strongly connected group
    of modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
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
                group = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    group.append(m)
                    if m == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return [_cycle_path(graph, set(g)) for g in sorted(groups)]


def _cycle_path(graph: dict[str, dict[str, int]], group: set[str]) -> list[str]:
    """A shortest way round from the group's first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for m in frontier:
            for t in sorted(graph[m]):
                if t == start:
                    return paths[m] + [start]
                if t in group and t not in paths:
                    paths[t] = paths[m] + [t]
                    nxt.append(t)
        frontier = nxt
    raise AssertionError(f"no way round {sorted(group)}")


def problems(root: Path) -> list[str]:
    graph = import_graph(root)
    return floor_violations(graph, root) + [
        "import cycle: " + " -> ".join(c) for c in cycles(graph)]


# --- the project ---------------------------------------------------------------------


def test_imports_go_down_the_floors_and_never_in_a_circle():
    assert problems(ROOT) == []


def test_every_package_is_scanned():
    files = module_files(ROOT)
    assert {_package(m) for m in files} == set(PACKAGES) | set(TOP_MODULES)
    assert len(files) > 40


# --- the checker itself --------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_checker_finds_an_upward_import_a_neighbour_and_a_cycle(tmp_path):
    root = _tree(tmp_path, {
        "base/__init__.py": "",
        "connectors/__init__.py": "",
        "connectors/http.py": "from connectors import pubmed\n",
        "connectors/pubmed.py": "import connectors.http\n",
        "db/__init__.py": "",
        "db/flow.py": ("from db.store import Store\n\n\n"
                       "def states():\n    from screeners.state import stage_states\n"),
        "db/store.py": "from base import errors\nfrom connectors.pubmed import x\n",
        "screeners/__init__.py": "",
        "screeners/state.py": "from . import prioritise\n",
        "screeners/prioritise.py": "from db.store import Store\nfrom .stopping import f\n",
        "screeners/stopping.py": "from screeners.state import s\n",
        "cluster/__init__.py": "",
        "cluster/demo.py": "from screeners.state import s\nimport cli\n",
        "cluster/expand.py": "from screeners.state import s\n",
        "cli.py": "import cluster.expand\n",
    })
    assert problems(root) == [
        "cluster/demo.py:2: cluster.demo imports cli",
        "cluster/expand.py:1: cluster.expand imports screeners.state",
        "db/flow.py:5: db.flow imports screeners.state",
        "db/store.py:2: db.store imports connectors.pubmed",
        "import cycle: connectors.http -> connectors.pubmed -> connectors.http",
        "import cycle: screeners.prioritise -> screeners.stopping -> screeners.state"
        " -> screeners.prioritise",
    ]


def test_the_checker_passes_a_tree_that_keeps_the_floors(tmp_path):
    root = _tree(tmp_path, {
        "base/__init__.py": "",
        "connectors/__init__.py": "from base.errors import E\n",
        "db/__init__.py": "",
        "db/store.py": "from base import errors\n",
        "screeners/__init__.py": "",
        "screeners/state.py": "from db.store import Store\n",
        "cluster/__init__.py": "",
        "cli.py": "from screeners import state\nfrom cluster import expand\n",
    })
    assert problems(root) == []


def test_the_demo_is_imported_only_by_itself_and_the_cli():
    graph = import_graph(ROOT)
    outside = sorted(f"{module} imports {target}" for module, edges in graph.items()
                     for target in edges
                     if target.startswith("cluster.demo") and not module.startswith("cluster.demo")
                     and module != "cli")
    assert outside == []
    assert "cluster.demo.run" in graph["cli"]


def test_the_prioritiser_model_knows_no_store():
    # the model reads labelled files (db.formats) for a simulation, never the store
    graph = import_graph(ROOT)
    reach = sorted(f"{module} imports {target}" for module, edges in graph.items()
                   if module.startswith("screeners.prioritiser")
                   for target in edges
                   if target.startswith("db") and not target.startswith("db.formats"))
    assert reach == []
