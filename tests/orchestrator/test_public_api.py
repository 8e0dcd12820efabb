"""The orchestrator's public surface, and the module rules that keep it small and honest:
no `_private` name crosses a module boundary, and no module imports loop (not even inside
functions; `if TYPE_CHECKING:` imports are for types only and don't count)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import orchestrator

PACKAGE = Path(orchestrator.__file__).resolve().parent
ROOT = PACKAGE.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in PACKAGE.rglob("*.py")}


def runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def resolve(current: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = current.split(".")
    base = package[: len(package) - node.level + (1 if current in packages() else 0)]
    return ".".join([*base, *(node.module or "").split(".")]).strip(".")


def packages() -> set[str]:
    return {module_name(p) for p in PACKAGE.rglob("__init__.py")}


def test_the_public_api_is_listed_and_every_name_resolves() -> None:
    expected = {
        "Stack",
        "StackSpec",
        "ServiceSpec",
        "AppProfile",
        "open_stack",
        "Provider",
        "OrchestratorConfig",
    }

    assert expected <= set(orchestrator.__all__)
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None, name


def test_importing_the_package_loads_none_of_its_dependencies() -> None:
    code = (
        "import orchestrator, sys; "
        "print(sorted(m for m in ('requests', 'tenacity', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"


def test_no_module_imports_another_modules_private_name() -> None:
    offences = []
    for name, tree in modules().items():
        for node in runtime_imports(tree) + [
            n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
        ]:
            if not isinstance(node, ast.ImportFrom):
                continue
            source = resolve(name, node)
            if not source.startswith("orchestrator") or source == name:
                continue
            offences += [
                f"{name} imports {source}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    assert offences == []


def test_there_are_no_import_cycles() -> None:
    mods = modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, tree in mods.items():
        for node in runtime_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = resolve(name, node)
                targets = [
                    f"{source}.{a.name}" if f"{source}.{a.name}" in mods else source
                    for a in node.names
                ]
            graph[name] |= {t for t in targets if t in mods and t != name}
    # A submodule may import its own package's __init__ only if __init__ doesn't import back.
    cycles = strongly_connected(graph)

    assert cycles == [], f"import cycles: {cycles}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return result
