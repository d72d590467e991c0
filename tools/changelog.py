"""The changelog gate: a change to ``stem/`` or ``supervisor/`` comes with a changelog entry.

CI checks a fresh clone of main with no other branches, so the gate cannot compare against
a merge base. It reads only ``HEAD``'s first-parent history, newest first, in units:

- a merge commit ``M`` is one unit: the paths of ``git diff M^1 M`` (what the merged branch
  brought) and the messages of ``git log M^1..M``;
- a run of consecutive non-merge commits is one unit (on a branch in progress, its
  uncommitted changes join the run at the tip).

A unit that touches ``stem/`` or ``supervisor/`` must touch ``changes/`` (a fragment) or
``CHANGELOG.md``, or carry a ``Changelog: none`` line in one of its messages. The walk stops
at the first commit whose tree lacks ``changes/README.md``: commits from before the gate
existed are never judged. Deterministic: it depends on the commits only, never on dates,
remotes or other branches.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CODE_DIRS = ("stem/", "supervisor/")
ENTRY_PATHS = ("changes/", "CHANGELOG.md")
GATE_FILE = "changes/README.md"
OPT_OUT = "changelog: none"


@dataclass
class Unit:
    """What the gate judges at once: a merge, or a run of direct commits."""

    commits: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)

    def problem(self) -> str | None:
        """Why this unit fails the gate, or None when it passes."""
        touches_code = any(p.startswith(CODE_DIRS) for p in self.paths)
        has_entry = any(p.startswith(ENTRY_PATHS) and p != GATE_FILE for p in self.paths)
        opted_out = any(
            line.strip().lower() == OPT_OUT for m in self.messages for line in m.splitlines()
        )
        if not touches_code or has_entry or opted_out:
            return None
        where = ", ".join(
            f"{c[:10]} {s!r}" if c else s for c, s in zip(self.commits, self.subjects, strict=True)
        )
        return (
            f"{where}: changes stem/ or supervisor/ without a changelog entry; add a fragment "
            "(changes/README.md says how) or a `Changelog: none` line to a commit message"
        )


def _git(repo: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *argv], cwd=repo, capture_output=True, text=True, check=False, encoding="utf-8"
    )


def _lines(repo: Path, *argv: str) -> list[str]:
    done = _git(repo, *argv)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(argv)}: {done.stderr.strip()}")
    return [line for line in done.stdout.splitlines() if line]


def _gated(repo: Path, commit: str) -> bool:
    return _git(repo, "cat-file", "-e", f"{commit}:{GATE_FILE}").returncode == 0


def _uncommitted(repo: Path) -> list[str]:
    out = _git(repo, "status", "--porcelain", "--untracked-files=all").stdout
    # "XY path" or "XY old -> new": the path the change ends at is last.
    return [line[3:].split(" -> ")[-1].strip('"') for line in out.splitlines() if line]


def units(repo: Path) -> list[Unit]:
    """The units of ``HEAD``'s gated first-parent history, newest first."""
    run = Unit()
    if (repo / GATE_FILE).exists():
        pending = _uncommitted(repo)
        if pending:
            run.commits.append("")
            run.subjects.append("uncommitted changes")
            run.paths.update(pending)
    found: list[Unit] = []
    for line in _lines(repo, "rev-list", "--first-parent", "--parents", "HEAD"):
        commit, *parents = line.split()
        if not _gated(repo, commit):
            break
        subject = _lines(repo, "log", "-1", "--format=%s", commit) or [""]
        if len(parents) > 1:
            if run.commits:
                found.append(run)
                run = Unit()
            rng = f"{parents[0]}..{commit}"
            found.append(
                Unit(
                    commits=[commit],
                    subjects=subject,
                    paths=set(_lines(repo, "diff", "--name-only", parents[0], commit)),
                    messages=[_git(repo, "log", "--format=%B", rng).stdout],
                )
            )
            continue
        run.commits.append(commit)
        run.subjects.extend(subject)
        run.paths.update(
            _lines(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit)
        )
        run.messages.append(_git(repo, "log", "-1", "--format=%B", commit).stdout)
    if run.commits:
        found.append(run)
    return found


def unjudgeable(repo: Path) -> str | None:
    """Why the gate cannot judge ``repo`` (it then passes, saying why), or None."""
    try:
        if _git(repo, "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
            return "not a git checkout with commits"
    except FileNotFoundError:
        return "git is not installed"
    if _git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        return "a shallow clone hides the history it judges (fetch with --unshallow)"
    return None


def check(repo: Path) -> list[str]:
    """The gate's complaints about ``repo`` (empty: it passes, or cannot judge it)."""
    if unjudgeable(repo) is not None:
        return []
    return [p for u in units(repo) if (p := u.problem()) is not None]
