"""The layering rule of docs/design.md, read from the imports themselves.

* The library (``sharedstate/`` outside ``api/``, ``worker/``, ``cli/``) imports neither the
  services nor their frameworks (FastAPI, Starlette, uvicorn, RQ, Prometheus).
* The services, the command, the benchmarks and the examples use the library's public names:
  no ``sharedstate._private`` module, no ``obj._private`` attribute of another object.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "sharedstate"
SERVICES = ("api", "worker", "cli")
FRAMEWORKS = {"fastapi", "starlette", "uvicorn", "rq", "prometheus_client"}


def _modules(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(root.rglob("*.py"))


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _library() -> list[Path]:
    return [
        path
        for path in _modules(PACKAGE)
        if path.relative_to(PACKAGE).parts[0] not in SERVICES
        and path.name != "__main__.py"  # `python -m sharedstate`: the command's entry point
    ]


def test_the_library_imports_no_service_and_no_framework() -> None:
    assert len(_library()) > 20
    problems = []
    for path in _library():
        for line, name in _imported(ast.parse(path.read_text())):
            top = name.split(".")[0]
            service = name.split(".")[1] if top == "sharedstate" and "." in name else None
            if top in FRAMEWORKS or service in SERVICES:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert problems == []


def _reach_ins(path: Path, base: Path = ROOT) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    for line, name in _imported(tree):
        parts = name.split(".")
        if parts[0] == "sharedstate" and any(p.startswith("_") and not p.startswith("__") for p in parts):
            yield f"{path.relative_to(base)}:{line} imports {name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            and not (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "super")
        ):
            yield f"{path.relative_to(base)}:{node.lineno} uses .{node.attr}"


@pytest.mark.parametrize(
    "root", [*(PACKAGE / service for service in SERVICES), ROOT / "bench", ROOT / "examples"], ids=str
)
def test_services_use_public_names_only(root: Path) -> None:
    assert list(_modules(root))
    found = [problem for path in _modules(root) for problem in _reach_ins(path)]
    assert found == []


def test_the_checks_would_see_a_reach_in(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from sharedstate._core import Call\nstore._core.put('a', 1, None)\nself._ok = 1\n")
    assert list(_reach_ins(bad, tmp_path)) == [
        "bad.py:1 imports sharedstate._core",
        "bad.py:1 imports sharedstate._core.Call",
        "bad.py:2 uses ._core",
    ]
