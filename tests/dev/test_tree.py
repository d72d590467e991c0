"""The working tree itself: nothing a bad merge leaves behind."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A line git writes around a conflict: seven markers at the start of a line.
CONFLICT = re.compile(r"^(<{7}|>{7}|={7})( |$)", re.MULTILINE)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    suffixes = {".py", ".md", ".lua", ".toml", ".txt", ".yml", ".yaml", ".cfg", ".ini", ""}
    return [
        ROOT / name.decode() for name in listed if name and Path(name.decode()).suffix in suffixes
    ]


def test_no_tracked_file_holds_merge_conflict_markers() -> None:
    files = tracked_text_files()
    assert len(files) > 100  # really looked at the tree
    marked = [
        str(path.relative_to(ROOT))
        for path in files
        if path.is_file() and CONFLICT.search(path.read_text(errors="replace"))
    ]
    assert marked == []
