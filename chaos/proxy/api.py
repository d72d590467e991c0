"""Toxiproxy's HTTP API v2, routed onto a :class:`ProxyCollection`.

Routes, status codes and JSON shapes follow Shopify/toxiproxy's ``api.go``: 201 for a
created proxy and for populate, 204 for deletes and reset, 200 otherwise; errors are
``{"error": message, "status": code}``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from chaos.proxy.errors import ApiError, bad_request_body, missing_field
from chaos.proxy.http import Response
from chaos.proxy.model import ProxyCollection

#: What ``GET /version`` answers: the Toxiproxy release whose API this server follows.
VERSION = "2.12.0"


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value).encode())


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request_body(str(exc)) from None


def _proxy_fields(value: Any, where: str = "") -> tuple[str, str, str, bool]:
    if not isinstance(value, dict):
        raise bad_request_body("expected a JSON object")
    name, listen, upstream = (value.get(k) or "" for k in ("name", "listen", "upstream"))
    enabled = value.get("enabled", True)
    if not all(isinstance(v, str) for v in (name, listen, upstream)) or not isinstance(
        enabled, bool
    ):
        raise bad_request_body("name, listen and upstream are strings; enabled is a boolean")
    if not name:
        raise missing_field(f"name{where}")
    if not upstream:
        raise missing_field(f"upstream{where}")
    return name, listen, upstream, enabled


class Api:
    """Dispatch one request to the collection; never raises (errors become responses)."""

    def __init__(self, proxies: ProxyCollection) -> None:
        self.proxies = proxies

    async def handle(self, method: str, target: str, body: bytes) -> Response:
        """Answer ``method target`` with ``body``."""
        path = target.split("?", 1)[0]
        parts = [unquote(p) for p in path.strip("/").split("/")]
        try:
            return await self._route(method, parts, body)
        except ApiError as exc:
            return _json(exc.to_json(), exc.status)

    async def _route(self, method: str, parts: list[str], body: bytes) -> Response:
        match parts:
            case ["version"]:
                allowed = {"GET": self._version}
            case ["reset"]:
                allowed = {"POST": self._reset}
            case ["populate"]:
                allowed = {"POST": self._populate}
            case ["proxies"]:
                allowed = {"GET": self._index, "POST": self._create}
            case ["proxies", _]:
                allowed = {"GET": self._show, "POST": self._update, "DELETE": self._delete}
            case ["proxies", _, "toxics"]:
                allowed = {"GET": self._toxics, "POST": self._toxic_create}
            case ["proxies", _, "toxics", _]:
                allowed = {
                    "GET": self._toxic_show,
                    "POST": self._toxic_update,
                    "DELETE": self._toxic_delete,
                }
            case _:
                return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        if method == "PATCH" and "POST" in allowed and len(parts) > 1:
            method = "POST"  # Toxiproxy 2.6+ spells updates PATCH; POST still works
        handler = allowed.get(method)
        if handler is None:
            return Response(405, b"", "text/plain; charset=utf-8")
        return await handler(parts, body)

    async def _version(self, parts: list[str], body: bytes) -> Response:
        return Response(200, VERSION.encode(), "text/plain; charset=utf-8")

    async def _reset(self, parts: list[str], body: bytes) -> Response:
        await self.proxies.reset()
        return Response(204)

    async def _populate(self, parts: list[str], body: bytes) -> Response:
        data = _decode(body)
        if isinstance(data, dict) and "proxies" in data:
            data = data["proxies"]  # the file form of the config wraps the list
        if not isinstance(data, list):
            raise bad_request_body("expected a JSON array of proxies")
        fields = [_proxy_fields(p, f" at proxy {i + 1}") for i, p in enumerate(data)]
        created = []
        try:
            for name, listen, upstream, enabled in fields:
                created.append(await self.proxies.add_or_replace(name, listen, upstream, enabled))
        except ApiError as exc:
            body_json = {**exc.to_json(), "proxies": [p.to_json() for p in created]}
            return _json(body_json, exc.status)
        return _json({"proxies": [p.to_json() for p in created]}, 201)

    async def _index(self, parts: list[str], body: bytes) -> Response:
        return _json({name: p.to_json() for name, p in self.proxies.proxies.items()})

    async def _create(self, parts: list[str], body: bytes) -> Response:
        name, listen, upstream, enabled = _proxy_fields(_decode(body))
        proxy = await self.proxies.add(name, listen, upstream, enabled)
        return _json(proxy.to_json(), 201)

    async def _show(self, parts: list[str], body: bytes) -> Response:
        return _json(self.proxies.get(parts[1]).to_json())

    async def _update(self, parts: list[str], body: bytes) -> Response:
        proxy = self.proxies.get(parts[1])
        data = _decode(body)
        if not isinstance(data, dict):
            raise bad_request_body("expected a JSON object")
        await proxy.update(data)
        return _json(proxy.to_json())

    async def _delete(self, parts: list[str], body: bytes) -> Response:
        await self.proxies.remove(parts[1])
        return Response(204)

    async def _toxics(self, parts: list[str], body: bytes) -> Response:
        proxy = self.proxies.get(parts[1])
        return _json([t.to_json() for t in proxy.toxics.value])

    async def _toxic_create(self, parts: list[str], body: bytes) -> Response:
        proxy = self.proxies.get(parts[1])
        return _json(proxy.add_toxic(_decode(body)).to_json())

    async def _toxic_show(self, parts: list[str], body: bytes) -> Response:
        return _json(self.proxies.get(parts[1]).get_toxic(parts[3]).to_json())

    async def _toxic_update(self, parts: list[str], body: bytes) -> Response:
        proxy = self.proxies.get(parts[1])
        return _json(proxy.update_toxic(parts[3], _decode(body)).to_json())

    async def _toxic_delete(self, parts: list[str], body: bytes) -> Response:
        self.proxies.get(parts[1]).remove_toxic(parts[3])
        return Response(204)
