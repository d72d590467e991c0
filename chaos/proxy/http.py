"""A small HTTP/1.1 server on trio sockets, enough for the Toxiproxy API.

One request per connection (the response says ``Connection: close``): the API is tiny
and its clients open a connection per call. Bodies need ``Content-Length``; chunked
request bodies are refused with 411, oversized heads or bodies with 413. A client that
stalls mid-request is dropped after ``_REQUEST_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

import trio


@dataclass(frozen=True)
class Response:
    """An HTTP response: status, content type and body."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"


Handler = Callable[[str, str, bytes], Awaitable[Response]]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_REQUEST_TIMEOUT_S = 30.0


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def _read_request(stream: trio.SocketStream) -> tuple[str, str, bytes]:
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _MAX_HEAD:
            raise _BadRequest(413)
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise _BadRequest(400)
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = request_line.split(" ")
    except ValueError:
        raise _BadRequest(400) from None
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest(411)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400) from None
    if length < 0 or length > _MAX_BODY:
        raise _BadRequest(413)
    body = bytearray(rest)
    if len(body) < length and headers.get("expect", "").lower() == "100-continue":
        await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl, for big bodies
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise _BadRequest(400)
        body += chunk
    return method.upper(), target, bytes(body[:length])


def _encode(response: Response) -> bytes:
    reason = HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {reason}", "Connection: close"]
    if response.status != 204:
        lines += [
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


async def _answer(handler: Handler, method: str, target: str, body: bytes) -> Response:
    # One request's bug must cost that request a 500, not take the server (and every
    # proxy with it) down.
    try:
        return await handler(method, target, body)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        error = {"error": f"internal error: {exc!r}", "status": 500}
        return Response(500, json.dumps(error).encode())


async def _serve_one(stream: trio.SocketStream, handler: Handler) -> None:
    async with stream:
        try:
            with trio.fail_after(_REQUEST_TIMEOUT_S):
                method, target, body = await _read_request(stream)
        except _BadRequest as exc:
            response = Response(exc.status, b"", "text/plain; charset=utf-8")
        except (trio.TooSlowError, trio.BrokenResourceError, UnicodeDecodeError):
            return
        else:
            response = await _answer(handler, method, target, body)
        # The client may have gone away: there is nothing left to tell it.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(_encode(response))


async def serve_http(
    handler: Handler,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on ``host:port`` until cancelled; reports the bound port.

    Requests are answered concurrently, each in its own task; cancelling closes the
    listener and any request still in progress.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    listener = listeners[0]
    for extra in listeners[1:]:
        await extra.aclose()
    async with listener, trio.open_nursery() as nursery:
        task_status.started(listener.socket.getsockname()[1])
        while True:
            stream = await listener.accept()
            nursery.start_soon(_serve_one, stream, handler)
