"""``python3 dev.py release X.Y.Z [--dry-run]``: cut a release and prove its wheel works.

Steps, each stopping the release with one line when it fails:

1. CHANGELOG.md: the fragments in ``changes/`` (rendered by ``towncrier build --draft``)
   and the entries written by hand under ``## [Unreleased]`` become ``## [X.Y.Z] - date``;
   the fragments are deleted.
2. The version in ``pyproject.toml`` and ``stem.__version__`` becomes X.Y.Z.
3. ``python -m build`` makes the sdist and the wheel in ``dist/``; ``twine check --strict``.
4. The wheel is installed into a fresh virtualenv (its dependencies from the index), where
   ``stem --version`` must say X.Y.Z and a round trip must complete: a private
   ``redis-server`` (``stem.embedded``), a job enqueued, ``stem worker --burst``, the result.

``--dry-run`` does all of it in a temporary copy of the checkout (tracked and untracked,
not ignored, files) and leaves the tree unchanged. Without it, the tree must be clean; the
release commit and tag are left to the person releasing (the command prints them), so the
diff can be read first. Run with the dev venv's Python (``dev.py`` does).
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import venv
from pathlib import Path

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
#: SemVer's X.Y.Z, with PEP 440's pre-release suffixes (1.2.0b1, 1.2.0rc1).
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)((a|b|rc)(0|[1-9]\d*))?$")
MARKER = "<!-- towncrier release notes start -->"
#: Keep a Changelog's section order.
SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


class ReleaseError(Exception):
    """A step of the release failed; the message is the one line to show."""


def say(msg: str) -> None:
    print(f"release: {msg}", flush=True)


def run(*argv: str | Path, cwd: Path, capture: bool = False) -> str:
    """Run a command; its output goes to the terminal unless captured."""
    shown = " ".join(str(a) for a in argv)
    say(f"$ {shown}")
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=capture, text=True, check=False
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip().splitlines()[-5:] if capture else []
        raise ReleaseError(f"failed ({done.returncode}): {shown}\n" + "\n".join(detail))
    return done.stdout if capture else ""


def current_version(tree: Path) -> str:
    found = re.search(r'^version = "([^"]+)"$', (tree / "pyproject.toml").read_text(), re.M)
    if found is None:
        raise ReleaseError('pyproject.toml has no `version = "..."` line')
    return found.group(1)


def check_version(new: str, old: str) -> None:
    """X.Y.Z (or a pre-release of it), and later than the current version."""
    if not VERSION_RE.match(new):
        raise ReleaseError(f"{new!r} is not X.Y.Z, X.Y.ZbN or X.Y.ZrcN")
    try:
        if Version(new) <= Version(old):
            raise ReleaseError(f"{new} is not later than the current version {old}")
    except InvalidVersion as exc:
        raise ReleaseError(str(exc)) from exc


def bump_version(tree: Path, new: str) -> None:
    """Write ``new`` into pyproject.toml's [project] version and ``stem.__version__``."""
    for rel, name in (("pyproject.toml", "version"), ("stem/__init__.py", "__version__")):
        path = tree / rel
        text, count = re.subn(
            rf'^{name} = "[^"]+"$', f'{name} = "{new}"', path.read_text(), count=1, flags=re.M
        )
        if count != 1:
            raise ReleaseError(f'{rel}: no `{name} = "..."` line to bump')
        path.write_text(text)


def parse_sections(text: str) -> dict[str, list[str]]:
    """``### Name`` sections of Markdown -> their non-blank lines (bullets and their wraps)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = sections.setdefault(line[4:].strip(), [])
        elif line.startswith("#"):
            current = None
        elif current is not None and line.strip():
            current.append(line)
    return sections


def merge_changelog(changelog: str, rendered: str, version: str, date: str) -> str:
    """CHANGELOG.md with the Unreleased entries and the rendered fragments under ``version``.

    ``rendered`` is towncrier's draft (``### Type`` sections). Hand-written entries come first
    in each section (they are older), then the fragments. ``## [Unreleased]`` stays, empty
    but for the marker, above the new section.
    """
    if MARKER not in changelog:
        raise ReleaseError(f"CHANGELOG.md lacks the marker {MARKER}")
    head, rest = changelog.split(MARKER, 1)
    next_release = re.search(r"^## \[", rest, re.M)
    unreleased = rest[: next_release.start()] if next_release else rest
    older = rest[next_release.start() :] if next_release else ""
    by_hand, fragments = parse_sections(unreleased), parse_sections(rendered)
    unknown = set(by_hand) - set(SECTIONS)
    if unknown:
        raise ReleaseError(f"CHANGELOG.md: unknown Unreleased sections {sorted(unknown)}")
    body = [f"## [{version}] - {date}", ""]
    for name in SECTIONS:
        lines = by_hand.get(name, []) + fragments.get(name, [])
        if lines:
            body += [f"### {name}", *lines, ""]
    if len(body) == 2:
        raise ReleaseError("nothing to release: no fragments and no Unreleased entries")
    return f"{head}{MARKER}\n\n" + "\n".join(body) + ("\n" + older if older else "")


def fragments(tree: Path) -> list[Path]:
    return sorted(p for p in (tree / "changes").glob("*.md") if p.name != "README.md")


def write_changelog(tree: Path, version: str) -> None:
    date = datetime.date.today().isoformat()
    rendered = run(
        sys.executable, "-m", "towncrier", "build", "--draft", "--version", version,
        "--date", date, cwd=tree, capture=True,
    )  # fmt: skip
    path = tree / "CHANGELOG.md"
    merged = merge_changelog(path.read_text(), rendered, version, date)
    path.write_text(merged)
    section = merged.split(f"## [{version}]", 1)[1].split("\n## [", 1)[0]
    counts = {n: sum(x.startswith("- ") for x in e) for n, e in parse_sections(section).items()}
    say(f"CHANGELOG.md: [{version}] - {date}: " + ", ".join(f"{n} {c}" for n, c in counts.items()))
    for fragment in fragments(tree):
        fragment.unlink()


ROUND_TRIP_APP = """
import stem

app = stem.Stem(namespace="release-check")


@app.task
def add(a: int, b: int) -> int:
    return a + b
"""

ROUND_TRIP = """
import os, subprocess, sys, tempfile
from pathlib import Path

from stem.embedded import EmbeddedRedis

with tempfile.TemporaryDirectory() as data, EmbeddedRedis(Path(data), appendonly=False) as r:
    os.environ["STEM_REDIS_URL"] = r.url
    import roundtrip_app

    handle = roundtrip_app.add.enqueue(2, 3)
    stem_cmd = Path(sys.executable).with_name("stem")
    subprocess.run(
        [stem_cmd, "--app", "roundtrip_app:app", "worker", "--burst"], check=True, timeout=120
    )
    value = handle.result(timeout_s=30)
    assert value == 5, value
    import stem, supervisor  # the wheel's supervisor package sits beside its stem
    assert Path(supervisor.__file__).parent.parent == Path(stem.__file__).parent.parent
    print(f"round trip: add(2, 3) = {value} via {r.url}, job {handle.id}")
"""


def smoke_test_wheel(wheel: Path, version: str, scratch: Path) -> None:
    """Install ``wheel`` into a fresh venv; check ``stem --version`` and a job round trip."""
    env_dir = scratch / "venv"
    say(f"fresh virtualenv {env_dir}")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    run(py, "-m", "pip", "install", "--quiet", str(wheel), cwd=scratch)
    out = run(env_dir / "bin" / "stem", "--version", cwd=scratch, capture=True).strip()
    say(out)
    if version not in out.split():
        raise ReleaseError(f"`stem --version` says {out!r}, not {version}")
    (scratch / "roundtrip_app.py").write_text(textwrap.dedent(ROUND_TRIP_APP))
    (scratch / "roundtrip.py").write_text(textwrap.dedent(ROUND_TRIP))
    say(run(py, "roundtrip.py", cwd=scratch, capture=True).strip())


def copy_checkout(dest: Path) -> None:
    """Tracked and untracked (not ignored) files of the checkout, as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def release(version: str, *, dry_run: bool) -> None:
    """Every step on ``ROOT`` (or, dry, on a temporary copy of it)."""
    check_version(version, current_version(ROOT))
    with tempfile.TemporaryDirectory(prefix="stem-release-") as tmp:
        scratch = Path(tmp)
        tree = ROOT
        if dry_run:
            tree = scratch / "tree"
            copy_checkout(tree)
            say(f"dry run in a copy: {tree}")
        elif subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip():  # fmt: skip
            raise ReleaseError("the working tree has uncommitted changes: commit them first")
        say(f"{current_version(tree)} -> {version}: CHANGELOG.md from {len(fragments(tree))} "
            "fragment(s) and the Unreleased entries")  # fmt: skip
        write_changelog(tree, version)
        bump_version(tree, version)
        shutil.rmtree(tree / "dist", ignore_errors=True)
        run(sys.executable, "-m", "build", "--outdir", tree / "dist", tree, cwd=tree)
        built = sorted((tree / "dist").iterdir())
        run(sys.executable, "-m", "twine", "check", "--strict", *built, cwd=tree)
        wheel = next(p for p in built if p.suffix == ".whl")
        smoke_test_wheel(wheel, version, scratch)
        if dry_run:
            say(f"dry run ok: {', '.join(p.name for p in built)}; the tree is unchanged")
        else:
            say(f"ok: {', '.join(str(p) for p in built)}. Next: read `git diff`, then")
            say(f'  git commit -am "Release {version}" && git tag -a v{version} -m {version}')


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--dry-run"]
    if len(args) != 1:
        print("usage: python3 dev.py release X.Y.Z [--dry-run]", file=sys.stderr)
        return 2
    try:
        release(args[0], dry_run="--dry-run" in argv)
    except ReleaseError as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
