"""Blocking helpers for talking to proxies and the Toxiproxy API from synchronous tests."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from toxiproxy.proxy import Proxy

#: Upper bound on any single blocking socket call in these tests.
IO_TIMEOUT_S = 10.0


def address(hostport: str) -> tuple[str, int]:
    """``"127.0.0.1:1234"`` as ``("127.0.0.1", 1234)``."""
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


@contextmanager
def connect(proxy: Proxy) -> Iterator[socket.socket]:
    """A client connection through ``proxy``, closed afterwards."""
    sock = socket.create_connection(address(proxy.listen), timeout=IO_TIMEOUT_S)
    try:
        yield sock
    finally:
        sock.close()


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes, failing on EOF before that."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(65536, size - len(data)))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def recv_until_closed(sock: socket.socket) -> tuple[bytes, int]:
    """Read to EOF; returns the bytes and how many ``recv`` calls returned data."""
    data = bytearray()
    pieces = 0
    while chunk := sock.recv(65536):
        data += chunk
        pieces += 1
    return bytes(data), pieces


def round_trip_s(sock: socket.socket, payload: bytes) -> float:
    """Send ``payload`` to the echo server behind the proxy; seconds until it is back."""
    started = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - started


def echo_through(proxy: Proxy, payload: bytes) -> bytes:
    """Stream ``payload`` through ``proxy`` to the echo server and read as much back.

    A thread sends while this thread reads, so a payload larger than the socket buffers
    cannot deadlock. It does not half-close: the Go server closes the whole connection
    on a client's FIN, which would cut the echo short.
    """
    with connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        try:
            return recv_counted(sock, len(payload))[0]
        finally:
            sender.join(IO_TIMEOUT_S)


def recv_counted(sock: socket.socket, size: int) -> tuple[bytes, int]:
    """Read ``size`` bytes (or up to EOF); returns them and how many reads it took."""
    data = bytearray()
    reads = 0
    while len(data) < size and (chunk := sock.recv(min(65536, size - len(data)))):
        data += chunk
        reads += 1
    return bytes(data), reads


def api(base_url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A raw API call, for what toxiproxy-python cannot express (it hides status codes)."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    request = urllib.request.Request(
        base_url + path,
        data=data.encode() if isinstance(data, str) else data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=IO_TIMEOUT_S) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        exc.close()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    """A loopback TCP server that echoes every byte and closes after the client's EOF."""

    daemon_threads = True
    block_on_close = False  # a connection a test left held open must not hang teardown
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)

    @property
    def hostport(self) -> str:
        """``host:port`` to use as a proxy's upstream."""
        host, port = self.socket.getsockname()[:2]
        return f"{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Resets are what these tests provoke: not worth a traceback on stderr."""
