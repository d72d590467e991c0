"""A Toxiproxy-compatible TCP proxy on trio.

Start it with ``python -m chaos.proxy --port 8474`` and drive it with the
``toxiproxy-python`` client, or run it inside a trio program with
:func:`open_toxiproxy_server` / :func:`serve_toxiproxy`. The modules:

- ``api``: the HTTP API v2 routes and JSON shapes;
- ``http``: the small HTTP/1.1 server under it;
- ``model``: proxies, their listeners and toxics;
- ``link``: the data path and what each toxic does to it;
- ``toxics``: toxic records, defaults and validation.
"""

from chaos.proxy.api import VERSION
from chaos.proxy.server import open_toxiproxy_server, serve_toxiproxy

__all__ = ["VERSION", "open_toxiproxy_server", "serve_toxiproxy"]
