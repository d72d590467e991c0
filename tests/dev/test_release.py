"""The pure steps of ``dev.py release`` and the version it bumps.

The whole command (build, twine, a fresh venv, a round trip) is too slow for the suite; it
is run by hand (``python3 dev.py release X.Y.Z --dry-run``, see docs/release.md).
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import stem
from stem.cli import main
from tools import release
from tools.release import MARKER, ReleaseError

ROOT = Path(__file__).resolve().parent.parent.parent

CHANGELOG = f"""# Changelog

## [Unreleased]

{MARKER}

### Added
- by hand, added
  (wrapped).

### Fixed
- by hand, fixed

## [0.1.0] - 2026-01-01

### Added
- the first release
"""

RENDERED = """## [0.2.0] - 2026-02-02

### Added

- from a fragment (#16)

### Security

- a security fragment
"""


def test_the_version_is_the_same_in_pyproject_the_package_and_its_metadata() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (stem.__version__, importlib.metadata.version("stem-jobs")) == (declared, declared)


def test_stem_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert (result.exit_code, result.output) == (0, f"stem, version {stem.__version__}\n")


def test_merge_puts_hand_entries_then_fragments_under_the_new_version() -> None:
    merged = release.merge_changelog(CHANGELOG, RENDERED, "0.2.0", "2026-02-02")
    expected = f"""# Changelog

## [Unreleased]

{MARKER}

## [0.2.0] - 2026-02-02

### Added
- by hand, added
  (wrapped).
- from a fragment (#16)

### Fixed
- by hand, fixed

### Security
- a security fragment

## [0.1.0] - 2026-01-01

### Added
- the first release
"""
    assert merged == expected


def test_merge_refuses_a_release_with_nothing_in_it() -> None:
    empty = f"## [Unreleased]\n\n{MARKER}\n\n## [0.1.0] - 2026-01-01\n"
    with pytest.raises(ReleaseError, match="nothing to release"):
        release.merge_changelog(empty, "", "0.2.0", "2026-02-02")


def test_merge_refuses_a_section_keep_a_changelog_does_not_have() -> None:
    odd = f"## [Unreleased]\n\n{MARKER}\n\n### Misc\n- what\n"
    with pytest.raises(ReleaseError, match="Misc"):
        release.merge_changelog(odd, "", "0.2.0", "2026-02-02")


@pytest.mark.parametrize("version", ["0.2.0", "1.0.0", "0.1.1", "0.2.0b1", "0.2.0rc2"])
def test_later_semver_versions_are_accepted(version: str) -> None:
    release.check_version(version, "0.1.0")


@pytest.mark.parametrize("version", ["0.1.0", "0.0.9", "v0.2.0", "0.2", "0.2.0.dev1", "01.2.3"])
def test_other_versions_are_refused(version: str) -> None:
    with pytest.raises(ReleaseError):
        release.check_version(version, "0.1.0")


def test_bump_writes_pyproject_and_the_package_version(tmp_path: Path) -> None:
    (tmp_path / "stem").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0.1.0"\n')
    (tmp_path / "stem" / "__init__.py").write_text('"""Doc."""\n\n__version__ = "0.1.0"\n')
    release.bump_version(tmp_path, "0.2.0")
    assert release.current_version(tmp_path) == "0.2.0"
    assert '__version__ = "0.2.0"' in (tmp_path / "stem" / "__init__.py").read_text()
