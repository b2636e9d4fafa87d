"""The import graph of polygrad's own modules: layers whose imports only point down, no
cycle (counting imports inside functions), and function-local imports only for optional
heavy libraries. The README's "How it is built" table is this LAYERS list in prose.

Each test first checks that it can see a violation (a graph with one added upward edge),
so that a broken parser cannot pass it silently.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom up. A module belongs to the first entry whose prefix matches its name; the package
# ``polygrad`` itself (its __init__) is the top-level namespace that imports everything.
LAYERS = [
    ("base", ("polygrad.base",)),
    ("plugins", ("polygrad.plugins",)),
    ("primitives", ("polygrad.primitives",)),
    ("graph", ("polygrad.graph",)),
    ("ops", ("polygrad.ops",)),
    ("features", ("polygrad.autograd", "polygrad.nn", "polygrad.optim", "polygrad.profiler",
                  "polygrad.viz", "polygrad.cuda", "polygrad.utils", "polygrad.func",
                  "polygrad.compiler", "polygrad.serialization",
                  "polygrad.accelerator")),
    ("namespace", ("polygrad",)),
    ("backends and kit", ("polygrad_backends", "polygrad_conformance")),
    ("cli", ("polygrad.__main__",)),
]
PACKAGES = {"polygrad": ROOT / "polygrad", "polygrad_backends": ROOT / "backends",
            "polygrad_conformance": ROOT / "conformance"}
# Optional heavy libraries (imported only when a backend or feature is used) and the lazy
# loaders of submodules: the only imports allowed inside functions.
HEAVY = {"torch", "cupy", "dask", "distributed", "matplotlib", "graphviz", "scipy", "jax",
         "array_api_strict", "importlib"}


def layer_of(module):
    if module == "polygrad.__main__":
        return len(LAYERS) - 1
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"module {module} belongs to no layer: add it to LAYERS")


def modules():
    for pkg, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if path.name.startswith("test_"):
                continue
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([pkg, *parts]), path, path.name == "__init__.py"


def _resolve(mod, is_pkg, node):
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph():
    """``{module: {(target, line, inside_function)}}`` for imports between our modules, and
    the list of function-local imports of anything else (``(module, line, name)``)."""
    known = {m: (p, pkg) for m, p, pkg in modules()}
    edges, local_other = {m: set() for m in known}, []
    for mod, (path, is_pkg) in known.items():
        tree = ast.parse(path.read_text(), str(path))
        parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                           for a in node.names]
            else:
                continue
            inside, up = False, node
            while up in parents:
                up = parents[up]
                if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    inside = True
                    break
            for t in targets:
                own = t
                while own and own not in known:
                    own = own.rpartition(".")[0]
                if own:
                    if own != mod:
                        edges[mod].add((own, node.lineno, inside))
                elif inside and t.split(".")[0] not in HEAVY:
                    local_other.append((mod, node.lineno, t))
    return edges, local_other


def upward(edges):
    return sorted(f"{m}:{line} imports {t} ({LAYERS[layer_of(t)][0]} is above "
                  f"{LAYERS[layer_of(m)][0]})"
                  for m, ts in edges.items() for t, line, _ in ts if layer_of(t) > layer_of(m))


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan, iterative enough)."""
    sys.setrecursionlimit(10000)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w, _, _ in edges.get(v, ()):
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
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_is_in_a_layer(graph):
    edges, _ = graph
    for m in edges:
        layer_of(m)


def test_imports_only_point_down(graph):
    edges, _ = graph
    planted = {m: set(ts) for m, ts in edges.items()}
    planted["polygrad.primitives.table"].add(("polygrad.graph.engine", 1, True))
    assert any("polygrad.primitives.table:1" in v for v in upward(planted))    # can fail
    assert upward(edges) == []


def test_no_import_cycle_even_inside_functions(graph):
    edges, _ = graph
    planted = {m: set(ts) for m, ts in edges.items()}
    planted["polygrad.base.dtypes"].add(("polygrad.base.device", 1, True))
    planted["polygrad.base.device"].add(("polygrad.base.dtypes", 1, True))
    assert cycles(planted)                                                     # can fail
    assert cycles(edges) == []


def test_function_local_imports_are_only_for_heavy_optional_libraries(graph):
    """In the core package. (The backends defer their array library and the conformance kit
    defers polygrad and numpy on purpose: listing plugins and loading pytest's plugin must
    import neither.)"""
    edges, local_other = graph
    core = [m for m in edges if m == "polygrad" or m.startswith("polygrad.")]
    # the one exception: the CLI hands `conformance` to the kit, which may not be installed
    ours = sorted(f"{m}:{line} imports {t} inside a function"
                  for m in core for t, line, inside in edges[m]
                  if inside and (m, t) != ("polygrad.__main__", "polygrad_conformance.cli"))
    assert ours == [], "imports of our own modules belong at the top of the file"
    others = sorted(f"{m}:{line} imports {t}" for m, line, t in local_other if m in core)
    assert others == [], "only optional heavy libraries are imported inside functions"


def test_the_shared_tool_agrees():
    """The repository's own view, from the tool that the reviewers run (when it is there)."""
    tool = ROOT.parent / "shared" / "tools" / "import_graph.py"
    if not tool.exists():
        pytest.skip(f"{tool} is not beside this checkout")
    import subprocess
    proc = subprocess.run([sys.executable, str(tool)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and " 0 cycle(s)" in proc.stdout, proc.stdout + proc.stderr
