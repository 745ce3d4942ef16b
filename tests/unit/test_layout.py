"""plugins/ says what it is: packages of one concern, one pytest entry each, no name that shadows another module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"


def _modules() -> list[Path]:
    return sorted(p for p in PLUGINS.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_is_named_after_a_standard_library_module():
    """With plugins/ (or one of its packages) on sys.path, no name of ours hides one of Python's."""
    clashes = [str(p.relative_to(ROOT)) for p in _modules() + [d / "__init__.py" for d in PLUGINS.rglob("*/")]
               if p.exists() and (p.parent.name if p.name == "__init__.py" else p.stem) in sys.stdlib_module_names]
    assert not clashes, f"named after a standard-library module: {', '.join(clashes)}"


def test_requests_imports_with_plugins_on_the_path():
    """plugins/http.py once shadowed the standard library's http: `import requests` failed."""
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    done = subprocess.run([sys.executable, "-c", "import requests, json, logging, socket"], env=env, cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_root_conftest_lists_exactly_the_packages_pytest_entries():
    """Each package that hooks into pytest has one plugin.py, and the root conftest lists exactly those."""
    listed = ast.literal_eval(next(
        node.value for node in ast.parse((ROOT / "conftest.py").read_text()).body
        if isinstance(node, ast.Assign) and node.targets[0].id == "pytest_plugins"))
    entries = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in PLUGINS.glob("*/plugin.py")}
    assert sorted(listed) == sorted(entries)


def test_only_the_plugin_modules_define_pytest_hooks():
    """A hook or fixture elsewhere in plugins/ would never be registered (or be registered twice)."""
    hooked = []
    for path in _modules():
        if path.name == "plugin.py":
            continue
        for node in ast.parse(path.read_text()).body:
            is_hook = isinstance(node, ast.FunctionDef) and node.name.startswith("pytest_")
            is_fixture = isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list)
            if is_hook or is_fixture:
                hooked.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not hooked, "pytest hooks or fixtures outside a plugin.py: " + "; ".join(hooked)


def test_the_inventory_imports_only_itself_and_shared():
    """plugins/inventory is read by every other package: it imports none of them (a rule both need is shared's)."""
    outside = []
    for path in sorted((PLUGINS / "inventory").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            outside += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.startswith("plugins.")
                        and not name.startswith(("plugins.inventory", "plugins.shared"))]
    assert not outside, "plugins/inventory imports another package: " + "; ".join(outside)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Every plugins/ module → the plugins/ modules it imports: at the top, under TYPE_CHECKING or in a function."""
    modules = {_module_name(path): path for path in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # a relative import: from its package upwards
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # `from package import module` imports the module; `from module import name` the module itself
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                               for alias in node.names)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of the graph ([] when there is none), by depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_import_graph_finds_a_circle():
    """The search itself: a circle of three is found, a chain is not."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_circle_under_plugins():
    """No plugins/ module imports, even lazily or for type checking, one that imports it back (directly or not)."""
    circle = _cycle(_import_graph())
    assert not circle, "import circle: " + " -> ".join(circle)


def test_the_stack_package_reads_the_inventory_and_nothing_reads_the_stack_from_below():
    """plugins/stack renders what plugins/inventory holds: the inventory never imports it."""
    graph = _import_graph()
    assert any(target.startswith("plugins.inventory") for name, targets in graph.items()
               if name.startswith("plugins.stack") for target in targets)
    upward = sorted(f"{name} -> {target}" for name, targets in graph.items() for target in targets
                    if name.startswith(("plugins.inventory", "plugins.shared")) and target.startswith("plugins.stack"))
    assert not upward, "imports of plugins/stack from below it: " + "; ".join(upward)
