#!/usr/bin/env python3
"""One entry point for developers: set everything up, then run stem or its checks.

    python3 dev.py run      # venv + install, then `stem supervise` on the sample app
    python3 dev.py check    # venv + install, then ruff, ruff format, mypy --strict, pytest

Needs only Python 3.11+. It creates `.venv/` next to this file, installs stem with its
development extras into it (re-installing only when pyproject.toml changed), and runs
the tools from there. Redis is not needed: the tests and `stem supervise` start their own.
Extra arguments after `check` go to pytest; after `run`, to `stem supervise`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".stem-installed"


def _say(msg: str) -> None:
    print(f"dev: {msg}", flush=True)


def _run(*argv: str | Path) -> None:
    completed = subprocess.run([str(a) for a in argv], cwd=ROOT, check=False)  # noqa: S603  (fixed tool argv, no shell)
    if completed.returncode != 0:
        _say(f"failed ({completed.returncode}): {' '.join(str(a) for a in argv)}")
        sys.exit(completed.returncode)


def ensure_env() -> None:
    """Create the venv and install stem[dev] into it, once per pyproject.toml version."""
    if sys.version_info < (3, 11):  # noqa: UP036  (a clear message on an old Python)
        sys.exit("dev: stem needs Python 3.11 or newer")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and PY.exists():
        return
    if not PY.exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    _say("installing stem with its development extras")
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(want)


def check(extra: list[str]) -> None:
    _run(PY, "-m", "ruff", "check", ".")
    _run(PY, "-m", "ruff", "format", "--check", ".")
    _run(PY, "-m", "mypy")
    _run(PY, "-m", "pytest", *extra)


def run(extra: list[str]) -> None:
    argv = ["supervise", "--app", "samples.quickstart:app", "--config", "samples/stem.toml"]
    os.execv(BIN / "stem", [str(BIN / "stem"), *argv, *extra])  # noqa: S606  (exec our own venv's stem)


def main() -> None:
    commands = {"check": check, "run": run}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: python3 dev.py run|check [args...]")
    ensure_env()
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
