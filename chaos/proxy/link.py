"""The data path: one client connection, its upstream connection, and a link each way.

A link copies bytes one way. A reader task receives chunks (stamped with their arrival
time) into a small buffer; the writer passes each chunk through the toxics that are on
the proxy *at that moment* for the link's direction, then writes it out. Because the
toxics are read from the proxy's :class:`trio_util.AsyncValue` per chunk, adding or
removing a toxic through the API changes live connections too, as in Toxiproxy.

Toxicity is rolled once per link and toxic version: a toxic with toxicity 0.5 applies
to about half of the connections, for the whole life of each.

Cleanup: :meth:`Connection.run` owns both sockets and closes them when both directions
have finished (EOF each way), when either side errors, or when the connection is closed
from outside (proxy disabled, ``timeout``/``limit_data`` toxic). ``reset_peer`` sets
``SO_LINGER`` to 0 first, so the peers see a TCP RST instead of a FIN.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence

import trio
from trio_util import AsyncValue

from chaos.proxy.toxics import Stream, Toxic

Emit = Callable[[bytes, float], Awaitable[None]]
_CHUNK = 32 * 1024
_BUFFERED_CHUNKS = 64


class Connection:
    """A proxied TCP connection; :meth:`run` returns once both sockets are closed."""

    def __init__(
        self,
        toxics: AsyncValue[tuple[Toxic, ...]],
        client: trio.SocketStream,
        upstream: trio.SocketStream,
    ) -> None:
        self.toxics = toxics
        self.client = client
        self.upstream = upstream
        self._scope = trio.CancelScope()

    def close(self) -> None:
        """End the connection: both sockets are closed (FIN) by :meth:`run`."""
        self._scope.cancel()

    def reset(self) -> None:
        """End the connection with a TCP RST on both sides (SO_LINGER 0, then close)."""
        linger = struct.pack("ii", 1, 0)
        for stream in (self.client, self.upstream):
            # A socket already closed by its peer has nothing left to reset.
            with contextlib.suppress(OSError):
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self._scope.cancel()

    async def run(self) -> None:
        """Pump both directions until done or closed; always closes both sockets."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    up = Link(self, Stream.UPSTREAM, self.client, self.upstream)
                    down = Link(self, Stream.DOWNSTREAM, self.upstream, self.client)
                    nursery.start_soon(up.run)
                    nursery.start_soon(down.run)
        finally:
            # Shielded: under an outer cancellation (proxy disabled, server stopping) the
            # first close's checkpoint would raise Cancelled and skip the second close.
            with trio.CancelScope(shield=True):
                await self.client.aclose()
                await self.upstream.aclose()


class Link:
    """One direction of a connection, with the toxics of that direction applied."""

    def __init__(
        self, conn: Connection, stream: Stream, src: trio.SocketStream, dst: trio.SocketStream
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.src = src
        self.dst = dst
        self._rolls: dict[int, bool] = {}
        self.passed: dict[int, int] = {}  # limit_data: bytes let through, per toxic version

    def active(self) -> list[Toxic]:
        """The toxics that apply to this link now, in the order they were added."""
        result = []
        for toxic in self.conn.toxics.value:
            if toxic.stream is not self.stream:
                continue
            if toxic.serial not in self._rolls:
                self._rolls[toxic.serial] = random.random() < toxic.toxicity  # noqa: S311  (fault injection odds)
            if self._rolls[toxic.serial]:
                result.append(toxic)
        return result

    def has_timeout(self, name: str) -> bool:
        """Whether a ``timeout`` toxic called ``name`` applies to this link now."""
        return any(t.name == name and t.type == "timeout" for t in self.active())

    async def run(self) -> None:
        """Copy until EOF (then half-close the other side); any socket error ends the
        whole connection."""
        send, receive = trio.open_memory_channel[tuple[bytes, float]](_BUFFERED_CHUNKS)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, send)
                nursery.start_soon(self._watch_timeouts)
                await self._write(receive)
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.conn.close()

    async def _read(self, send: trio.MemorySendChannel[tuple[bytes, float]]) -> None:
        async with send:
            while data := await self.src.receive_some(_CHUNK):
                await send.send((data, trio.current_time()))

    async def _write(self, receive: trio.MemoryReceiveChannel[tuple[bytes, float]]) -> None:
        async with receive:
            async for data, arrived in receive:
                await self._through(self.active(), data, arrived)
        for toxic in self.active():
            if toxic.type == "slow_close":
                await trio.sleep(toxic.attr("delay") / 1000)
        await self.dst.send_eof()

    async def _through(self, toxics: Sequence[Toxic], data: bytes, arrived: float) -> None:
        if not toxics:
            await self.dst.send_all(data)
            return
        toxic, rest = toxics[0], toxics[1:]

        async def emit(piece: bytes, at: float) -> None:
            await self._through(rest, piece, at)

        await PIPES[toxic.type](self, toxic, data, arrived, emit)

    async def _watch_timeouts(self) -> None:
        """Close the connection once a ``timeout`` toxic (timeout > 0) has been on this
        link for its timeout, counted from when the link first saw it."""
        timers: dict[int, trio.CancelScope] = {}
        async with trio.open_nursery() as nursery:
            async for _ in self.conn.toxics.eventual_values():
                live = {
                    t.serial: t
                    for t in self.active()
                    if t.type == "timeout" and t.attr("timeout") > 0
                }
                for serial in [s for s in timers if s not in live]:
                    timers.pop(serial).cancel()
                for serial, toxic in live.items():
                    if serial not in timers:
                        timers[serial] = await nursery.start(self._close_after, toxic)

    async def _close_after(
        self, toxic: Toxic, task_status: trio.TaskStatus[trio.CancelScope]
    ) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await trio.sleep(toxic.attr("timeout") / 1000)
            self.conn.close()


Pipe = Callable[[Link, Toxic, bytes, float, Emit], Awaitable[None]]


async def _latency(link: Link, toxic: Toxic, data: bytes, arrived: float, emit: Emit) -> None:
    jitter = toxic.attr("jitter")
    delay_ms = toxic.attr("latency") + random.uniform(-jitter, jitter)  # noqa: S311  (latency jitter)
    await trio.sleep_until(arrived + max(0.0, delay_ms) / 1000)
    await emit(data, trio.current_time())


async def _bandwidth(link: Link, toxic: Toxic, data: bytes, arrived: float, emit: Emit) -> None:
    rate = toxic.attr("rate") * 1000  # bytes per second
    if rate == 0:
        await emit(data, arrived)
        return
    step = max(1, rate // 10)  # at most 100 ms worth of bytes at a time
    for start in range(0, len(data), step):
        piece = data[start : start + step]
        await trio.sleep(len(piece) / rate)
        await emit(piece, trio.current_time())


async def _pass(link: Link, toxic: Toxic, data: bytes, arrived: float, emit: Emit) -> None:
    await emit(data, arrived)  # slow_close acts at EOF, in Link._write


async def _timeout(link: Link, toxic: Toxic, data: bytes, arrived: float, emit: Emit) -> None:
    # Hold the data while the toxic is on; Link._watch_timeouts closes the connection
    # when timeout > 0. Removing the toxic lets the held data through.
    # Waits on the name, not this version: updating a timeout toxic keeps holding.
    await link.conn.toxics.wait_value(lambda _: not link.has_timeout(toxic.name))
    await emit(data, arrived)


async def _reset_peer(link: Link, toxic: Toxic, data: bytes, arrived: float, emit: Emit) -> None:
    await trio.sleep(toxic.attr("timeout") / 1000)
    link.conn.reset()
    await trio.sleep_forever()  # the reset cancels this task


async def _slicer(link: Link, toxic: Toxic, data: bytes, arrived: float, emit: Emit) -> None:
    average = toxic.attr("average_size")
    if average == 0:
        await emit(data, arrived)
        return
    variation = min(toxic.attr("size_variation"), average - 1)
    start = 0
    while start < len(data):
        size = average + random.randint(-variation, variation)  # noqa: S311  (slice sizes)
        await emit(data[start : start + size], arrived)
        start += size
        if start < len(data):
            await trio.sleep(toxic.attr("delay") / 1_000_000)


async def _limit_data(link: Link, toxic: Toxic, data: bytes, arrived: float, emit: Emit) -> None:
    limit = toxic.attr("bytes")
    passed = link.passed.get(toxic.serial, 0)
    piece = data[: max(0, limit - passed)]
    if piece:
        link.passed[toxic.serial] = passed + len(piece)
        await emit(piece, arrived)
    if passed + len(piece) >= limit:
        link.conn.close()
        await trio.sleep_forever()


PIPES: dict[str, Pipe] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slow_close": _pass,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "slicer": _slicer,
    "limit_data": _limit_data,
}
