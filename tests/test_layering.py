"""The layout rules, checked by reading imports: only the broker knows Redis."""

from __future__ import annotations

import ast
from pathlib import Path

STEM = Path(__file__).resolve().parent.parent / "stem"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_broker_package_imports_redis() -> None:
    offenders = [
        str(path.relative_to(STEM))
        for path in STEM.rglob("*.py")
        if "redis" in _imports(path) and path.parent.name != "broker"
    ]
    assert offenders == []


def test_lua_lives_in_lua_files_only() -> None:
    offenders = [
        str(path.relative_to(STEM))
        for path in STEM.rglob("*.py")
        if "redis.call(" in path.read_text()
    ]
    assert offenders == []


def test_the_chaos_proxy_imports_nothing_from_stem() -> None:
    # It stands in for an outside Go binary: stem under test must not shape it.
    chaos = STEM.parent / "chaos"
    offenders = [
        str(path.relative_to(chaos))
        for path in chaos.rglob("*.py")
        if _imports(path) & {"stem", "supervisor", "redis"}
    ]
    assert offenders == []
