"""Reach a Toxiproxy API: ``$TOXIPROXY_URL`` (a real ``toxiproxy-server``), a URL given by
the caller, or a ``python -m chaos.proxy --port 0`` subprocess started here.

Only the ``toxiproxy-python`` client talks to it, so the suite runs unchanged against
the Go server.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from toxiproxy import Toxiproxy

START_TIMEOUT_S = 20.0
_ROOT = Path(__file__).resolve().parents[2]


def client_for(url: str) -> Toxiproxy:
    """A ``toxiproxy.Toxiproxy`` client for the API at ``url``."""
    parts = urlsplit(url)
    client = Toxiproxy()
    client.update_api_consumer(parts.hostname, parts.port)
    return client


@contextlib.contextmanager
def open_toxiproxy(url: str | None = None) -> Iterator[str]:
    """Yield an API URL: ``url``, else ``$TOXIPROXY_URL``, else a private server's.

    A private server runs in its own session and is stopped (SIGTERM, then SIGKILL) on
    exit; its stderr goes to the harness' stderr.
    """
    url = url or os.environ.get("TOXIPROXY_URL")
    if url:
        yield url.rstrip("/")
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos.proxy", "--host", "127.0.0.1", "--port", "0"],
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield read_url(proc)
    finally:
        if (code := proc.poll()) is not None:
            # Died under the run (it only exits on our SIGTERM): say so, with how, since
            # every fault and every actor's link went with it.
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            print(
                f"chaos: the toxiproxy server (pid {proc.pid}) died early: {how}", file=sys.stderr
            )
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def read_url(proc: subprocess.Popen[str]) -> str:
    """The API URL a starting ``python -m chaos.proxy`` prints (20 s at most)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on " in line:
            return line.rsplit("listening on ", 1)[1].strip()
    raise RuntimeError(f"python -m chaos.proxy did not start (exit code {proc.poll()})")
