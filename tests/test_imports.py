"""The package's import graph: no cycles, and every import points down the layers below.

Read from the source with ``ast`` (imports inside functions count too), so a lazy import cannot
hide a cycle.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gluon_resnet"

# Lowest first; a module may import only from layers below its own. "__init__" is the package
# itself (``import gluon_resnet``, which sets the thread count before MXNet loads).
LAYERS = [
    {"errors", "files", "augment", "ema", "sam"},
    {"cli", "runtime", "checkpoint", "data", "blocks", "plots", "whiten"},
    {"distributed", "cifar", "zoo"},
    {"models"},
    {"__init__"},
    {"shapes", "loop", "settings", "onnx_export"},
    {"run", "explain"},
    {"evaluate", "predict", "pretrained", "launch"},
    {"train", "bench", "notebook", "analysis", "diagrams", "frontier"},
]


def imports_of(path, modules):
    """The package modules that the file ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("gluon_resnet")):
            module = node.module if node.level == 1 else node.module.partition(".")[2]
            if module:
                found.add(module.split(".")[0])
            else:  # from . import a, b  /  from gluon_resnet import a, get_model
                found |= {a.name for a in node.names if a.name in modules} or {"__init__"}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top == "gluon_resnet":
                    found.add(rest.split(".")[0] or "__init__")
    return found - {path.stem}


def import_graph():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: imports_of(p, modules) for p in PACKAGE.glob("*.py")}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_reader_sees_lazy_relative_and_absolute_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("import gluon_resnet\nfrom . import run\n"
                      "def f():\n    from .models import get_model\n    import gluon_resnet.loop\n")
    assert imports_of(source, {"run", "models", "loop"}) == {"__init__", "run", "models", "loop"}


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_every_import_points_to_a_lower_layer():
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    graph = import_graph()
    assert set(graph) <= set(layer), f"place {sorted(set(graph) - set(layer))} in LAYERS"
    upward = sorted(f"{m} -> {n}" for m, targets in graph.items() for n in targets if layer[n] >= layer[m])
    assert upward == []
