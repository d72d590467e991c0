"""The top-level ``supervisor`` package is stem's, not supervisord's (same import name).

supervisord's distribution (``supervisor`` on PyPI) installs a package of the same name; in
one environment the two overwrite each other's files. These tests fail loudly in an
environment where that happened (docs/troubleshooting.md, "supervisord and supervisor").
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import stem
import supervisor


def test_the_supervisor_package_is_the_one_installed_beside_stem() -> None:
    ours = Path(stem.__file__).resolve().parent.parent / "supervisor" / "__init__.py"
    assert Path(supervisor.__file__).resolve() == ours
    assert "imports nothing from ``stem``" in (supervisor.__doc__ or "")


def test_supervisord_is_not_installed_in_stems_environment() -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("supervisor")
