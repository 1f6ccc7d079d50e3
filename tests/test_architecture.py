"""The layout's rules, checked on the source: import direction and size limits."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "enclave"
# Who may not import whom: the pipeline builds on nothing above it; server and workshop are
# side by side; nothing imports the CLI.
FORBIDDEN = {
    "pipeline": ("enclave.server", "enclave.workshop", "enclave.cli"),
    "server": ("enclave.workshop", "enclave.cli"),
    "workshop": ("enclave.server", "enclave.cli"),
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    offending = [
        f"{path.relative_to(SOURCE)} imports {name}"
        for path in (SOURCE / package).rglob("*.py")
        for name in imported(path)
        if name.startswith(FORBIDDEN[package])
    ]
    assert not offending


def test_every_package_says_what_it_owns() -> None:
    for package in ("pipeline", "pipeline/store", "server", "server/routers", "workshop", "cli"):
        doc = ast.get_docstring(ast.parse((SOURCE / package / "__init__.py").read_text()))
        assert doc and len(doc) > 40, package


def test_no_module_over_the_limit() -> None:
    long = {
        str(p.relative_to(SOURCE)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long


def test_no_function_over_the_limit() -> None:
    long = [
        f"{path.relative_to(SOURCE)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long
