"""The package's rooms and the one direction of its imports, as ARCHITECTURE.md draws them:
edges (cli, web) -> core (search, ingest) -> index -> shared nouns at the top. A wrong-way
import or a cycle fails here, before it becomes the shape of the code."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "searchsvc"
# Each room and the rooms it may import (besides itself and the shared nouns).
MAY_IMPORT = {
    "nouns": set(),
    "index": set(),
    "ingest": {"index"},
    "search": {"index"},
    "cli": {"index", "ingest", "search", "web"},
    "web": {"index", "search"},
}
NOUNS = {"errors", "settings", "dates", "records", "markup"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports (absolute or relative, at any depth)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        out |= {c for c in candidates if c in known and c != name}
    return out


def room(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None  # the package itself
    return "nouns" if parts[1] in NOUNS else parts[1]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_is_in_a_room():
    rooms = {room(name) for name in modules()} - {None, "__main__"}
    assert rooms <= set(MAY_IMPORT), rooms - set(MAY_IMPORT)


def test_imports_run_one_way():
    wrong = []
    for name, targets in graph().items():
        here = room(name)
        if here not in MAY_IMPORT:
            continue
        for target in targets:
            there = room(target)
            if there not in (here, "nouns", None) and there not in MAY_IMPORT[here]:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_no_module_imports_itself_through_others():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []
