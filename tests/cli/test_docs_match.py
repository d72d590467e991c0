"""The docs' examples match the CLI: commands in the reference table, job ids, the
scheduling guide's ``stem supervise --config`` run, and the tutorial's install."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Invoke
from tests.cli.test_help import COMMANDS
from tests.worker.conftest import wait_until

DOCS = Path(__file__).resolve().parents[2] / "docs"
APP = "tests.apps.jobs:app"


def _section(text: str, heading: str) -> str:
    """The body of the Markdown section titled ``heading`` (up to the next heading)."""
    start = text.index(heading + "\n") + len(heading)
    end = re.search(r"^#", text[start:], re.MULTILINE)
    return text[start : start + end.start()] if end else text[start:]


def _fenced(text: str, lang: str) -> list[str]:
    """The bodies of the ```lang fenced blocks of ``text`` (indented ones too)."""
    return [
        re.sub(r"^ {2}", "", body, flags=re.MULTILINE)
        for body in re.findall(rf"^ *```{lang}\n(.*?)^ *```", text, re.MULTILINE | re.DOTALL)
    ]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_the_cli_reference_table_names_every_command_and_links_to_its_section() -> None:
    reference = (DOCS / "reference" / "cli.md").read_text()
    table = [ln for ln in reference.split("## Global options")[0].splitlines() if ln[:3] == "| ["]
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.*)$", reference, re.MULTILINE)}
    covered: set[str] = set()
    for row in table:
        link = re.search(r"\]\(#([^)]+)\)", row)
        assert link is not None and link[1] in anchors, row
        first, *subs = re.findall(r"`([^`]+)`", row)
        words = first.removeprefix("stem ").split()
        group = words[0]
        covered.add(group)
        if words[1:] == ["..."]:  # `stem schedule ...`: every subcommand
            covered |= {" ".join(p) for p in COMMANDS if p[:1] == (group,)}
        covered |= {f"{group} {w}" for w in [*words[1:2], *subs] if re.fullmatch(r"[a-z]+", w)}

    missing = sorted(" ".join(p) for p in COMMANDS if p and " ".join(p) not in covered)

    assert missing == []


# Where the docs show a generated job id: after these commands, or as a log's job=
# (not after --job-id, where a user's own id such as order-42 is the point).
_ID_SPOT = re.compile(
    r"""(?:\bresult (?:wait|get)\b|\bjob revoke\b|\bdlq (?:show|replay)\b|\bjob=)"""
    r"""[ '"]*([^\s'"`)\]\[,;]+)"""
)


def _is_placeholder(token: str) -> bool:
    # ID, ENTRY_OR_JOB_ID, <job id>, $JOB, $(stem ...), an option, or an elision
    return bool(re.fullmatch(r"[A-Z_]+(\.\.\.)?|[<$-].*|\.\.\.|[0-9a-f]*\.\.\.", token))


def _looks_real(token: str) -> bool:
    """What ``stem.envelope.new_job_id`` makes: 12 hex digits of epoch ms, 20 random."""
    if not re.fullmatch(r"[0-9a-f]{32}", token):
        return False
    year_ms = 365.25 * 86_400_000
    return 2024 <= 1970 + int(token[:12], 16) / year_ms < 2040


def test_every_example_job_id_in_the_docs_has_the_shape_of_a_real_one() -> None:
    pages = [*DOCS.rglob("*.md"), DOCS.parent / "README.md"]
    found = [
        (page.name, token)
        for page in pages
        for token in _ID_SPOT.findall(page.read_text())
        if not _is_placeholder(token)
    ]
    assert found, "no example job id found: is the pattern still right?"
    assert [(page, t) for page, t in found if not _looks_real(t)] == []


def test_a_new_job_id_passes_the_docs_check() -> None:
    from stem.envelope import new_job_id

    assert _looks_real(new_job_id())
    assert not _looks_real("0192f")


def test_the_scheduling_guides_supervise_example_runs_as_written(
    stem: Invoke, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path
) -> None:
    guide = (DOCS / "guides" / "scheduling.md").read_text()
    toml = next(b for b in _fenced(guide, "toml") if "[[schedule]]" in b)
    (tmp_path / "stem.toml").write_text(toml)
    [console] = _fenced(_section(guide, "## Running beats"), "console")
    [line] = [ln for ln in console.splitlines() if " supervise " in ln]
    argv = line.removeprefix("$ ").split("#")[0].split()
    assert argv[:2] == ["stem", "--app"]
    argv[2] = APP  # the guide's myproject.tasks:app; everything else as written
    env = {
        **os.environ,
        "PYTHONPATH": str(repo_root),
        "STEM_REDIS_URL": redis_url,
        "STEM_NAMESPACE": namespace,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", *argv], cwd=tmp_path, env=env, start_new_session=True
    )
    try:

        def synced() -> set[str]:
            listed = stem("schedule", "list", "--json")
            return {e["name"] for e in json.loads(listed.stdout or "[]")}

        wait_until(lambda: {"nightly-report", "heartbeat"} <= synced(), what="beat's sync")
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_tutorial_installs_from_a_checkout_and_says_why() -> None:
    install = _section((DOCS / "tutorial.md").read_text(), "## 1. Install")
    [block] = _fenced(install, "sh")
    commands = [ln.split("#")[0].strip() for ln in block.splitlines()]
    assert any(re.fullmatch(r"pip install (-e \S+|git\+\S+)", c) for c in commands), block
    assert not any(c.startswith("pip install stem") for c in commands), block
    assert "not\non PyPI yet" in install or "not on PyPI yet" in install
    assert "stem --version" in commands
