"""Fixtures for the chaos suite: a Toxiproxy server, its client, an echo upstream.

``toxiproxy`` is a ``toxiproxy.Toxiproxy`` client pointed at ``$TOXIPROXY_URL`` when it is
set (a real Go ``toxiproxy-server``, for example), else at a ``python -m chaos.proxy``
subprocess that this session starts on a free port. Every test gets the client with no
proxies left over from earlier tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.proxy import Proxy

from chaos.stack.toxi import START_TIMEOUT_S, read_url
from tests.chaos.support import EchoServer

_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def toxiproxy_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API URL: ``$TOXIPROXY_URL``, else a ``chaos.proxy`` server for the session.

    Our server's stderr goes to a file; a traceback in it fails the session at teardown,
    so a connection that crashed inside the server cannot pass unnoticed.
    """
    if url := os.environ.get("TOXIPROXY_URL"):
        yield url.rstrip("/")
        return
    log = tmp_path_factory.mktemp("toxiproxy") / "stderr.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaos.proxy", "--host", "127.0.0.1", "--port", "0"],
            cwd=_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        yield read_url(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    errors = log.read_text()
    assert (proc.returncode, errors) == (0, ""), f"chaos.proxy stderr:\n{errors}"


@pytest.fixture
def toxiproxy(toxiproxy_url: str) -> Iterator[Toxiproxy]:
    """A client for the server; all proxies are destroyed before and after the test."""
    parts = urlsplit(toxiproxy_url)
    client = Toxiproxy()
    client.update_api_consumer(parts.hostname, parts.port)
    client.destroy_all()
    yield client
    client.destroy_all()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    """A threaded loopback echo server, the upstream of most proxy tests."""
    server = EchoServer()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def echo_proxy(toxiproxy: Toxiproxy, echo_server: EchoServer) -> Iterator[Proxy]:
    """A proxy called ``echo`` on a free port in front of the echo server."""
    proxy = toxiproxy.create(name="echo", upstream=echo_server.hostport, listen="127.0.0.1:0")
    yield proxy
    if toxiproxy.get_proxy("echo") is not None:
        proxy.destroy()
