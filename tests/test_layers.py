"""The package's shape: folders are layers, and imports only point down.

Every import in cachelayer/ is counted, function-level ones included; only
``AppConfig.ready()`` may import upward (it wires the layers together).
Within one layer modules may import each other, but no import cycle exists
anywhere.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cachelayer"

# Lowest first. A module may import from its own layer or any lower one.
LAYERS = [
    ("core", ["cachelayer.exceptions", "cachelayer.signals", "cachelayer.core"]),
    ("adapters", ["cachelayer.adapters", "cachelayer.backends"]),
    ("models", ["cachelayer.models"]),
    ("engine", ["cachelayer.engine"]),
    (
        "django-facing",
        [
            "cachelayer.capture",
            "cachelayer.instances",
            "cachelayer.lists",
            "cachelayer.mixins",
            "cachelayer.repositories",
            "cachelayer.api",
        ],
    ),
    ("tasks", ["cachelayer.tasks"]),
    (
        "wiring and front ends",
        [
            "cachelayer.receivers",
            "cachelayer.checks",
            "cachelayer.forms",
            "cachelayer.admin",
            "cachelayer.cli",
            "cachelayer.protocol",
            "cachelayer.management",
            "cachelayer.contrib",
            "cachelayer.apps",
            "cachelayer",
        ],
    ),
]
CACHE_CLIENTS = ("pymemcache", "pylibmc", "redis", "django_redis")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or module.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best[0]


def _in_ready(node, parents) -> bool:
    return any(isinstance(p, ast.FunctionDef) and p.name == "ready" for p in parents)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """Return (imported module, line, inside ready()) for each import of a file."""
    module = module_name(path)
    tree = ast.parse(path.read_text())
    found: list = []

    def visit(node, parents):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, _in_ready(node, parents)) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = (
                    candidate
                    if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                    or (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                    else base
                )
                found.append((target, node.lineno, _in_ready(node, parents)))
        for child in ast.iter_child_nodes(node):
            visit(child, [*parents, node])

    visit(tree, [])
    return found


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        module = module_name(path)
        edges[module] = {
            target
            for target, _, in_ready in imports(path)
            if target.startswith("cachelayer") and target != module and not in_ready
        }
    return edges


def test_imports_point_down_only():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        module = module_name(path)
        for target, line, in_ready in imports(path):
            if target.startswith("cachelayer") and not in_ready and layer_of(target) > layer_of(module):
                wrong.append(
                    f"{module}:{line} imports {target} ({LAYERS[layer_of(target)][0]} is above "
                    f"{LAYERS[layer_of(module)][0]})"
                )
    assert wrong == []


def test_no_import_cycle():
    edges = graph()
    cycles = []
    state = {}

    def walk(node, stack):
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if target not in edges:
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                walk(target, [*stack, target])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            walk(module, [module])
    assert cycles == []


def test_only_adapters_touch_cache_clients():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        for target, line, _ in imports(path):
            if target.split(".")[0] in CACHE_CLIENTS and not module.startswith("cachelayer.adapters"):
                wrong.append(f"{module}:{line} imports {target}")
    assert wrong == []


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    """The checks above can fail: the walker finds an upward import hidden in a function."""
    hidden = PACKAGE / "core" / "_probe_for_test.py"
    hidden.write_text("def f():\n    from cachelayer.mixins import CachedModelMixin\n")
    try:
        found = [t for t, _, _ in imports(hidden)]
    finally:
        hidden.unlink()
    assert found == ["cachelayer.mixins"]
    assert layer_of("cachelayer.mixins") > layer_of("cachelayer.core._probe_for_test")
