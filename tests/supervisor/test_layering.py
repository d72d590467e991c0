"""supervisor/ supervises command lines, not objects: it must not import stem."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "supervisor"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_no_module_of_the_supervisor_package_imports_stem() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in imported_modules(path) if m == "stem" or m.startswith("stem.")
        )
        for path in files
    }

    assert len(files) >= 8
    assert {name: mods for name, mods in offenders.items() if mods} == {}
