"""requirements-dev.lock pins every dependency that pyproject.toml declares.

Re-resolving in the test would depend on what the index holds today; this only checks that
nobody added a dependency without running ``python3 dev.py lock``, and that the pins
satisfy the declared ranges.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent.parent


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements-dev.lock").read_text()
    found = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M)
    return {canonicalize_name(name): version for name, version in found}


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    return [r for r in declared if canonicalize_name(r.name) != "stem-jobs"]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    unpinned = [str(r) for r in _declared() if canonicalize_name(r.name) not in pins]
    assert unpinned == [], "run `python3 dev.py lock`"
    outside = [
        f"{r} (locked {pins[canonicalize_name(r.name)]})"
        for r in _declared()
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == [], "run `python3 dev.py lock`"


def test_every_pin_carries_a_hash() -> None:
    text = (ROOT / "requirements-dev.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert [b.split()[0] for b in blocks if "--hash=sha256:" not in b] == []
