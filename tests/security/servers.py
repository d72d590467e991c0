"""redis-server processes with the options a security test needs (TLS, ACL, Sentinel).

:func:`start_redis` runs the binary the suite uses (see ``stem.embedded``) with extra
arguments and waits until ``ready()`` answers; a server that exits first fails the test
with its own output, and a binary without TLS support fails with the Debian package to
install. ``run_stem`` runs the real ``stem`` command line in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stem.embedded import find_redis_server

ROOT = Path(__file__).resolve().parent.parent.parent

TLS_HINT = (
    "needs a redis-server built with TLS: install Debian's redis-server package "
    "(apt-get install redis-server, Redis 7.0 with TLS) or set STEM_REDIS_SERVER to one"
)


@contextmanager
def start_redis(
    args: list[str], ready: Callable[[], bool], *, binary: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``redis-server <args>`` until the block ends; wait (10 s at most) for ``ready``."""
    argv = [binary or find_redis_server(), *args]
    # argv built by the test itself; no shell.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not ready():
            if proc.poll() is not None:
                out = proc.communicate()[0].decode(errors="replace")
                hint = f"\n{argv[0]} {TLS_HINT}" if "tls" in out.lower() else ""
                raise AssertionError(f"redis-server exited {proc.returncode}:\n{out}{hint}")
            assert time.monotonic() < deadline, f"redis-server {args} never became ready"
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def answers(client_factory: Callable[[], object]) -> Callable[[], bool]:
    """A ``ready`` check: a fresh client from ``client_factory`` answers PING."""

    def ready() -> bool:
        client = client_factory()
        try:
            return bool(client.ping())  # type: ignore[attr-defined]
        except Exception:
            return False
        finally:
            client.close()  # type: ignore[attr-defined]

    return ready


def run_stem(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stem.cli <args>`` from the repository root; capture its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("STEM_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "stem.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
