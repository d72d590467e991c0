"""The changelog gate (tools/changelog.py) on small real git repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tools import changelog

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    """A throwaway repository with helpers to write files and commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.git("init", "-q", "-b", "main")

    def git(self, *argv: str) -> str:
        done = subprocess.run(
            ["git", *argv],
            cwd=self.path,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def write(self, *paths: str) -> None:
        for rel in paths:
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a") as f:
                f.write("x\n")

    def commit(self, message: str, *paths: str) -> None:
        self.write(*paths)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path)
    r.commit("old code, before the gate", "stem/a.py")
    r.commit("the gate", changelog.GATE_FILE)
    return r


def test_history_from_before_the_gate_is_never_judged(repo: Repo) -> None:
    assert changelog.check(repo.path) == []


def test_a_code_commit_without_an_entry_fails_naming_it(repo: Repo) -> None:
    repo.commit("tweak the worker", "stem/worker.py")
    problems = changelog.check(repo.path)
    assert len(problems) == 1
    assert "tweak the worker" in problems[0]


def test_a_run_of_commits_passes_once_any_of_them_has_a_fragment(repo: Repo) -> None:
    repo.commit("tweak the worker", "stem/worker.py")
    repo.commit("and the supervisor", "supervisor/core.py")
    repo.commit("changelog", "changes/+tweak.changed.md")
    assert changelog.check(repo.path) == []


def test_a_changelog_md_line_counts_as_an_entry(repo: Repo) -> None:
    repo.commit("fix and say so", "stem/worker.py", "CHANGELOG.md")
    assert changelog.check(repo.path) == []


def test_changes_outside_stem_and_supervisor_need_no_entry(repo: Repo) -> None:
    repo.commit("tests and docs", "tests/test_x.py", "docs/x.md")
    assert changelog.check(repo.path) == []


def test_a_changelog_none_line_opts_a_unit_out(repo: Repo) -> None:
    repo.commit("refactor\n\nChangelog: none", "stem/worker.py")
    assert changelog.check(repo.path) == []


def test_uncommitted_code_changes_join_the_run_at_the_tip(repo: Repo) -> None:
    repo.write("stem/worker.py")
    assert len(changelog.check(repo.path)) == 1
    repo.write("changes/+w.fixed.md")
    assert changelog.check(repo.path) == []


def test_a_merge_is_judged_by_what_its_branch_brought(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("code", "stem/worker.py")
    repo.commit("entry", "changes/+w.added.md")
    repo.git("checkout", "-q", "main")
    repo.commit("unrelated docs on main", "docs/x.md")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    assert changelog.check(repo.path) == []


def test_a_merged_branch_without_an_entry_fails_as_the_merge(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("code", "stem/worker.py")
    repo.git("checkout", "-q", "main")
    repo.commit("an entry on main does not cover the branch", "changes/+m.added.md")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    problems = changelog.check(repo.path)
    assert len(problems) == 1
    assert "Merge feature" in problems[0]


def test_a_branch_forked_before_the_gate_is_judged_when_merged_after_it(tmp_path: Path) -> None:
    r = Repo(tmp_path)
    r.commit("base", "stem/a.py")
    r.git("checkout", "-q", "-b", "old-branch")
    r.commit("code with a CHANGELOG.md line", "stem/b.py", "CHANGELOG.md")
    r.git("checkout", "-q", "main")
    r.commit("the gate", changelog.GATE_FILE)
    r.git("merge", "-q", "--no-ff", "-m", "Merge old-branch", "old-branch")
    assert changelog.check(r.path) == []


def test_outside_a_git_checkout_the_gate_has_nothing_to_judge(tmp_path: Path) -> None:
    assert changelog.check(tmp_path) == []


def test_a_shallow_clone_is_not_judged_and_says_why(
    repo: Repo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo.commit("tweak the worker", "stem/worker.py")  # would fail in a full clone
    shallow = tmp_path_factory.mktemp("clone") / "shallow"
    url = repo.path.as_uri()
    subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(shallow)], check=True)
    assert "shallow" in (changelog.unjudgeable(shallow) or "")
    assert changelog.check(shallow) == []
