"""The Toxiproxy-compatible server: the HTTP API plus the proxies it manages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from chaos.proxy.api import Api
from chaos.proxy.http import serve_http
from chaos.proxy.model import ProxyCollection, join_address

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8474  # Toxiproxy's


async def serve_toxiproxy(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the API on ``host:port`` until cancelled; reports the API's base URL.

    Port 0 picks a free port (the reported URL has the real one). On cancellation every
    proxy's listener and connections are closed before this returns.
    """
    async with trio.open_nursery() as nursery:
        proxies = ProxyCollection(nursery)
        try:
            bound = await nursery.start(serve_http, Api(proxies).handle, host, port)
            task_status.started(f"http://{join_address(host, bound)}")
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await proxies.clear()


@asynccontextmanager
async def open_toxiproxy_server(host: str = DEFAULT_HOST, port: int = 0) -> AsyncIterator[str]:
    """Run a server in this trio run for the block; yields its base URL.

    The ``toxiproxy-python`` client blocks, so call it through ``trio.to_thread.run_sync``
    when the server runs in the same trio loop. Leaving the block stops the server and
    closes every proxy and connection.
    """
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_toxiproxy, host, port)
        try:
            yield url
        finally:
            nursery.cancel_scope.cancel()
