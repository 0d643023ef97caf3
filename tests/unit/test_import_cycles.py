"""No two modules of src/entrix import each other, directly or in a circle: a module-level import
counts, under `if TYPE_CHECKING:` too (a circle of types is still one a reader has to untangle);
an import inside a function does not (it runs after both modules are loaded).

Read from the source with `ast`, so the check costs milliseconds and imports nothing."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules(src: Path) -> dict[str, Path]:
    modules = {}
    for path in src.rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _module_level(body: Sequence[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when loaded, including those under `if` and `try`."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _module_level(block)


def import_graph(src: Path) -> dict[str, set[str]]:
    """Each module under `src` and the modules under `src` it imports (`from package import
    module` is an import of that module)."""
    modules = _modules(src)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set()
        for node in _module_level(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                imported.add(submodule if submodule in modules else base)
        graph[name] = {module for module in imported if module in modules and module != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def test_src_entrix_has_no_import_cycle() -> None:
    found = cycle(import_graph(SRC))
    assert found is None, "import cycle: " + " -> ".join(found or ())


@pytest.mark.parametrize(
    ("modules", "circular"),
    [
        # The shape src/entrix/local/deploy had: the deployer imports a service module, which
        # imports the deployer's type under TYPE_CHECKING.
        (
            {
                "pkg/__init__.py": "",
                "pkg/deployer.py": "from pkg import dynamodb\n",
                "pkg/dynamodb.py": "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.deployer import Deployer\n",
            },
            True,
        ),
        (
            {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "from . import a\n"},
            True,
        ),
        # Both import a third module, and a lazy import inside a function: no cycle.
        (
            {
                "pkg/__init__.py": "",
                "pkg/registry.py": "",
                "pkg/deployer.py": "from pkg import dynamodb, registry\n",
                "pkg/dynamodb.py": "from pkg.registry import creates\n"
                "def later():\n    from pkg import deployer\n",
            },
            False,
        ),
    ],
)
def test_a_cycle_is_found_by_its_shape(
    tmp_path: Path, modules: dict[str, str], circular: bool
) -> None:
    for relative, text in modules.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert (cycle(import_graph(tmp_path)) is not None) is circular
