"""Proxies and the collection of them: listeners, enable/disable, toxics per proxy.

Every proxy's listener and connections run as tasks in the server's nursery. A proxy
that is enabled owns a cancel scope around its listener and every connection it
accepted; disabling it cancels that scope, which closes the listener and all its
connections, and waits until they are closed before returning (so the API's answer
means the port is really closed). Enabling listens again on the same address; a proxy
created with port 0 keeps the port the system gave it the first time.
"""

from __future__ import annotations

import socket
import sys
import traceback
from typing import Any

import trio
from trio_util import AsyncValue

from chaos.proxy.errors import (
    ApiError,
    proxy_exists,
    proxy_not_found,
    toxic_exists,
    toxic_not_found,
)
from chaos.proxy.link import Connection
from chaos.proxy.toxics import Toxic, parse_new_toxic, parse_toxic_update

DEFAULT_LISTEN = "127.0.0.1:0"


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into its parts; raises ``ValueError``."""
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"missing port in address {address!r}")
    return host.strip("[]"), int(port)


def join_address(host: str, port: int) -> str:
    """The inverse of :func:`split_address`, as Go's ``net.JoinHostPort`` writes it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _bind(address: str) -> tuple[trio.SocketListener, str]:
    host, port = split_address(address)
    infos = await trio.socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    family, type_, proto, _, sockaddr = infos[0]
    sock = trio.socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind(sockaddr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    return trio.SocketListener(sock), join_address(bound_host, bound_port)


class Proxy:
    """A named TCP proxy from ``listen`` to ``upstream`` with its toxics."""

    def __init__(self, nursery: trio.Nursery, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen or DEFAULT_LISTEN
        self.upstream = upstream
        self.toxics: AsyncValue[tuple[Toxic, ...]] = AsyncValue(())
        self._nursery = nursery
        self._running: tuple[trio.CancelScope, trio.Event] | None = None

    @property
    def enabled(self) -> bool:
        """Whether the proxy is listening."""
        return self._running is not None

    def to_json(self) -> dict[str, Any]:
        """The proxy in the API's JSON shape, with its toxics."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics.value],
        }

    async def start(self) -> None:
        """Listen; raises :class:`ApiError` (500) if the address cannot be bound."""
        if self._running is None:
            try:
                self._running = await self._nursery.start(self._serve)
            except (OSError, ValueError) as exc:
                raise ApiError(f"listen {self.listen}: {exc}", 500) from exc

    async def stop(self) -> None:
        """Close the listener and every connection; returns once they are closed."""
        if self._running is not None:
            scope, stopped = self._running
            self._running = None
            scope.cancel()
            await stopped.wait()

    async def update(self, body: dict[str, Any]) -> None:
        """Apply a POST /proxies/{name} body: ``listen``, ``upstream``, ``enabled``."""
        listen = body.get("listen", self.listen) or self.listen
        upstream = body.get("upstream", self.upstream) or self.upstream
        enabled = body.get("enabled", self.enabled)
        if not all(isinstance(v, str) for v in (listen, upstream)) or not isinstance(enabled, bool):
            raise ApiError("bad request body: wrong type for listen, upstream or enabled", 400)
        if (listen, upstream) != (self.listen, self.upstream):
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled:
            await self.start()
        else:
            await self.stop()

    async def _serve(
        self, task_status: trio.TaskStatus[tuple[trio.CancelScope, trio.Event]]
    ) -> None:
        stopped = trio.Event()
        try:
            with trio.CancelScope() as scope:
                listener, self.listen = await _bind(self.listen)
                async with listener, trio.open_nursery() as connections:
                    task_status.started((scope, stopped))
                    while True:
                        client = await listener.accept()
                        connections.start_soon(self._handle, client)
        finally:
            stopped.set()

    async def _handle(self, client: trio.SocketStream) -> None:
        try:
            host, port = split_address(self.upstream)
            upstream = await trio.open_tcp_stream(host, port)
        except (OSError, ValueError):
            await trio.aclose_forcefully(client)  # as Toxiproxy: no upstream, no connection
            return
        try:
            await Connection(self.toxics, client, upstream).run()
        except Exception:
            # Per connection: one connection's failure must not stop the proxy.
            traceback.print_exc(file=sys.stderr)

    def _find(self, name: str) -> Toxic:
        toxics: tuple[Toxic, ...] = self.toxics.value
        for toxic in toxics:
            if toxic.name == name:
                return toxic
        raise toxic_not_found()

    def add_toxic(self, body: Any) -> Toxic:
        """Add a toxic from a create request; it applies to live connections too."""
        toxic = parse_new_toxic(body)
        if any(t.name == toxic.name for t in self.toxics.value):
            raise toxic_exists()
        self.toxics.value = (*self.toxics.value, toxic)
        return toxic

    def get_toxic(self, name: str) -> Toxic:
        """The toxic called ``name``; raises :class:`ApiError` (404)."""
        return self._find(name)

    def update_toxic(self, name: str, body: Any) -> Toxic:
        """Replace a toxic's attributes/toxicity, keeping its place in the chain."""
        new = parse_toxic_update(self._find(name), body)
        self.toxics.value = tuple(new if t.name == name else t for t in self.toxics.value)
        return new

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic; data it was holding goes on through the rest of the chain."""
        self._find(name)
        self.toxics.value = tuple(t for t in self.toxics.value if t.name != name)


class ProxyCollection:
    """All proxies of one server, by name."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        """The proxy called ``name``; raises :class:`ApiError` (404)."""
        try:
            return self.proxies[name]
        except KeyError:
            raise proxy_not_found() from None

    async def add(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        """Create a proxy; 409 if the name is taken, 500 if it cannot listen."""
        if name in self.proxies:
            raise proxy_exists()
        proxy = Proxy(self._nursery, name, listen, upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def add_or_replace(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        """Populate's rule: keep a proxy with the same listen and upstream, else replace it."""
        existing = self.proxies.get(name)
        if existing is not None:
            if (existing.listen, existing.upstream) == (listen or DEFAULT_LISTEN, upstream):
                return existing
            await self.remove(name)
        return await self.add(name, listen, upstream, enabled)

    async def remove(self, name: str) -> None:
        """Stop and forget a proxy; 404 if unknown."""
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        for proxy in list(self.proxies.values()):
            await proxy.start()
            proxy.toxics.value = ()

    async def clear(self) -> None:
        """Stop and forget every proxy (server shutdown)."""
        for name in list(self.proxies):
            await self.remove(name)
