"""The house rules, read from the source: layered imports without cycles, no private names across modules, small
modules and functions, one registry."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import pipelines

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# Lower layers never import higher ones. Capability packages sit on one layer and never import each other.
LAYERS = {
    "pipelines.core": 0,
    "pipelines.files": 1,
    "pipelines.render": 2,
    "pipelines.train": 3,
    # capability packages: 4 (every other pipelines.<package>)
    "pipelines": 5,  # the registry, the CLI and Health, which reach capabilities through the registry
    "tabs": 6,
    "app": 7,
}
CAPABILITY_LAYER = 4
TOP = ("pipelines", "tabs", "app")


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in ("pipelines", "tabs"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package_of(module: str) -> str:
    """`pipelines.pose.fit` -> `pipelines.pose`; `pipelines.health` -> `pipelines`; `tabs.x` -> `tabs`."""
    parts = module.split(".")
    if parts[0] != "pipelines":
        return parts[0]
    if len(parts) >= 2 and (ROOT / "pipelines" / parts[1]).is_dir():
        return f"pipelines.{parts[1]}"
    return "pipelines"


def layer_of(module: str) -> int:
    package = _package_of(module)
    return LAYERS.get(package, CAPABILITY_LAYER)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of ours in `module`, at any depth."""
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            if submodules:
                found += [(s, [], node.lineno) for s in submodules]
                names = [n for n in names if f"{target}.{n}" not in MODULES]
            if names or not submodules:
                found.append((target, names, node.lineno))
    return [(t, n, line) for t, n, line in found if t in MODULES]


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_is_seen():
    assert "pipelines.core.events" in MODULES and "tabs.stream" in MODULES and len(MODULES) > 40


def test_no_upward_import():
    upward = []
    for module, edges in GRAPH.items():
        for target, _, line in edges:
            if layer_of(target) > layer_of(module):
                upward.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert not upward, "imports must point down the layers:\n" + "\n".join(upward)


def test_capabilities_do_not_import_each_other():
    sideways = []
    for module, edges in GRAPH.items():
        if layer_of(module) != CAPABILITY_LAYER:
            continue
        for target, _, line in edges:
            if layer_of(target) == CAPABILITY_LAYER and _package_of(target) != _package_of(module):
                sideways.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert not sideways, "a capability reaches shared code through a lower layer:\n" + "\n".join(sideways)


def test_no_import_cycle():
    graph = defaultdict(set)
    for module, edges in GRAPH.items():
        for target, _, _ in edges:
            if target != module and not module.startswith(target + "."):  # a package's own __init__ is fine
                graph[module].add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(MODULES):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_no_private_names_cross_modules():
    private = []
    for module, edges in GRAPH.items():
        for target, names, line in edges:
            bad = [n for n in names if n.startswith("_") and n != "__version__"]
            if bad:
                private.append(f"{MODULES[module].relative_to(ROOT)}:{line} takes {bad} from {target}")
    assert not private, "\n".join(private)


def test_our_modules_are_imported_at_the_top():
    """An import of our own code inside a function hides a dependency (and, often, a cycle) from readers and tools."""
    hidden = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node.col_offset > 0:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if (isinstance(node, ast.ImportFrom) and node.level) or any(n.split(".")[0] in TOP for n in names):
                    hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not hidden, "imports of our modules inside functions:\n" + "\n".join(hidden)


def test_pipelines_never_import_the_ui():
    for module, path in MODULES.items():
        if module.startswith("pipelines"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                assert not any(n.split(".")[0] in ("gradio", "tabs", "app") for n in names), f"{module} imports UI"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_and_functions_are_small(module):
    source = MODULES[module].read_text()
    lines = source.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{module}: functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_says_what_it_is_for(module):
    assert ast.get_docstring(ast.parse(MODULES[module].read_text())), f"{module} has no module docstring"


def test_registry_modules_exist_and_live_in_capability_packages():
    for key, entry in pipelines.REGISTRY.items():
        assert key == key.lower() and "_" not in key, key
        assert entry.module in MODULES, entry.module
        assert layer_of(entry.module) == CAPABILITY_LAYER, entry.module
