"""The package's shape: data flows one way, so no module imports another that imports it back.

Every import statement counts, those inside functions and under TYPE_CHECKING too: an import moved into a
function to dodge a cycle is still a cycle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "infragen"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from . import x` imports the submodule x when there is one, else a name of the package
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 20 and "infragen.models.environment" in graph["infragen.policy"]  # the graph is real
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_models_import_nothing_from_the_layers_above_them() -> None:
    """Models know settings and derived values; loading, rendering, policy and the CLI build on them."""
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("infragen.models"):
            above = {t for t in targets if t.startswith("infragen.") and not t.startswith("infragen.models")}
            # Beneath them only the error types and the rule catalogue (the models raise load-stage rules).
            assert above <= {"infragen.errors", "infragen.rules"}, f"{name} imports {sorted(above)}"


def test_every_error_infragen_raises_has_one_root() -> None:
    """InfragenError, with input, output and tool branches, all declared in infragen.errors (an output problem is
    not an input problem); fsutil's NotRegularFile is an OSError, caught where files are opened."""
    import inspect

    from infragen import errors

    modules = {module for module, _name in _exception_classes()}
    assert modules == {"infragen.errors", "infragen.fsutil"}, sorted(_exception_classes())
    roots = {cls.__name__: cls for cls in vars(errors).values()
             if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == "infragen.errors"}
    assert all(issubclass(cls, errors.InfragenError) for cls in roots.values()), roots
    branches = (errors.InputError, errors.OutputError, errors.ToolError)
    assert all(cls is errors.InfragenError or cls in branches or issubclass(cls, branches) for cls in roots.values())
    assert not issubclass(errors.OutputError, errors.InputError) and not issubclass(errors.ToolError, errors.InputError)


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) of every class in the package that derives from an exception by its base's name."""
    found = []
    for path in sorted((REPO / "infragen").rglob("*.py")):
        module = "infragen." + path.relative_to(REPO / "infragen").with_suffix("").as_posix().replace("/", ".")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception", "Interrupted", "Failed", "_Bug")))
                    for b in node.bases):
                found.append((module, node.name))
    return found


def test_the_package_is_typed_and_the_gates_are_configured() -> None:
    """mypy runs at zero findings in CI (.ci/run), so the package says it is typed; ruff and mypy are configured."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert (REPO / "infragen" / "py.typed").is_file()
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["infragen"]
    assert "pydantic.mypy" in pyproject["tool"]["mypy"]["plugins"] and pyproject["tool"]["ruff"]["lint"]["select"]
    assert "INFRAGEN_LINT=1" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
