"""The layers hold: `rag/` (the library) never imports `api/` (the web app above it), and no
modules of the library import each other in a cycle (the PostgreSQL backend's view and writer
reach the backend through a protocol below them)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, wherever the import statement is (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def modules(package: str) -> dict[str, Path]:
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / package).rglob("*.py")
    }


def test_the_library_never_imports_the_web_app() -> None:
    offenders = {
        name: sorted(m for m in imports_of(path) if m == "api" or m.startswith("api."))
        for name, path in modules("rag").items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_import_cycle_in_the_library() -> None:
    library = modules("rag")
    graph = {
        name: {m for m in imports_of(path) if m in library and m != name}
        for name, path in library.items()
    }
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        for target in graph[name]:
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []
