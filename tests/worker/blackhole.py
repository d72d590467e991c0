"""A loopback TCP forwarder that can turn into a network black hole.

``Blackhole(port)`` listens on 127.0.0.1 and forwards every connection to
``127.0.0.1:port``. While ``swallowing()`` is on, connections stay open (and new ones are
accepted and connected upstream) but every byte, in both directions, is read and dropped:
a half-open partition, where nothing fails fast and only timeouts notice. Afterwards bytes
flow again; whatever was swallowed is lost, as it is in a real black hole. Threads only,
so it runs beside trio or plain code; ``close()`` ends every thread and socket.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator


class Blackhole:
    """Forward 127.0.0.1:<self.port> to 127.0.0.1:<upstream_port>; swallow on demand."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def swallowing(self) -> Iterator[None]:
        """Drop every byte in both directions for the duration of the block."""
        self._forwarding.clear()
        try:
            yield
        finally:
            self._forwarding.set()

    def close(self) -> None:
        self._closed.set()
        for s in list(self._sockets):
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(timeout=5)

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            pump = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._threads.append(pump)
            pump.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        sel = selectors.DefaultSelector()
        try:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            while not self._closed.is_set():
                for key, _ in sel.select(timeout=0.1):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return  # one side closed: close both
                    if self._forwarding.is_set():
                        peer[src].sendall(data)
        except (OSError, ValueError):
            return  # a socket closed under us (reset, or close())
        finally:
            sel.close()
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
