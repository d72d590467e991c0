"""``RedisPendingFetch``: a wait-and-fetch sent to Redis whose replies are read without blocking.

``RedisBroker.begin_wait_and_fetch`` sends three commands pipelined on one pooled
connection and returns at once: ``CLIENT ID`` (so :meth:`RedisBroker.interrupt_waits` can
end the wait), ``XREAD BLOCK`` from the positions of the queue's last empty fetch, and the
fetch script, which Redis runs as soon as the read returns. :meth:`RedisPendingFetch.poll`
reads whatever has arrived and never blocks, so the caller chooses how to wait for
:meth:`RedisPendingFetch.fileno` to become readable:

* a worker waits on its trio thread (``trio.lowlevel.wait_readable``): the job that wakes
  it is read by the thread that runs it, one wake-up instead of a broker thread's and then
  trio's (docs/performance.md, "Latency at 200 jobs/s");
* a thread calls :meth:`RedisPendingFetch.wait`, which blocks in ``select.poll``
  (``RedisBroker.wait_and_fetch``, and a worker ending a wait at a stop).

The replies are parsed by a ``hiredis.Reader`` of our own, fed from the connection's
socket in non-blocking mode (TLS included: a TLS socket is read until it wants more).
redis-py's own reader is not used for them: it can only block until a reply is whole.
It decodes replies as redis-py's hiredis reader does; a RESP3 push frame (client-side
caching invalidations, maintenance notices) is no reply and is skipped. A connection
that answered with a connection error or from a replica, or that has bytes left over, is
not reused.
"""

from __future__ import annotations

import contextlib
import select
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import hiredis
import redis
from redis.exceptions import NoScriptError

from stem.broker.base import Delivery
from stem.broker.connection import Faults, mapped

#: Replies a pending fetch waits for: CLIENT ID, XREAD, the fetch script.
_REPLIES = 3
#: Bytes read from the socket per ``recv``.
_CHUNK = 65_536
#: No reply this long after the read's own timeout: the connection is given up.
_SOCKET_TIMEOUT_S = 30.0
#: Replies after which the connection is not reused: it is broken (LOADING, NOAUTH...), or
#: it reached a replica (a Sentinel pool then looks the master up again on reconnect).
_CONNECTION_SPENT = (redis.ConnectionError, redis.ReadOnlyError)


class RedisPendingFetch:
    """One wait-and-fetch under way on ``conn`` (see the module docstring).

    Drive it with :meth:`poll` until it returns True, then take :meth:`result`; or
    :meth:`abandon` it. Every path gives the connection back to its pool, disconnected
    when replies may be left unread.
    """

    def __init__(
        self,
        conn: Any,  # redis-py's Connection is untyped
        *,
        pool: Any,
        faults: Faults,
        read_timeout_ms: int,
        waiting: set[int],
        waiting_lock: threading.Lock,
        on_refused_id: Callable[[], None],
        finish: Callable[[Any], list[Delivery]],
    ) -> None:
        self.faults = faults  # for @mapped
        self.url = faults.url
        self._conn = conn
        self._sock: Any = conn._sock  # redis-py keeps the socket here (2.x to 8.x)
        self._pool = pool
        self._waiting = waiting
        self._waiting_lock = waiting_lock
        self._on_refused_id = on_refused_id
        self._finish = finish
        parse_error = getattr(getattr(conn, "_parser", None), "parse_error", None)
        self._reader = hiredis.Reader(
            protocolError=redis.ConnectionError, replyError=parse_error or redis.ResponseError
        )
        self._replies: list[Any] = []
        socket_timeout_s = getattr(conn, "socket_timeout", None) or _SOCKET_TIMEOUT_S
        self._give_up_at = time.monotonic() + read_timeout_ms / 1000 + socket_timeout_s
        self._open = True
        #: The connection's id in Redis once its reply is in (what ``interrupt_waits``
        #: needs); None before, or when the ACL refuses ``CLIENT ID``.
        self.client_id: int | None = None

    @mapped
    def fileno(self) -> int:
        """The socket to wait on; readable once a reply (or a part of one) arrives."""
        try:
            return int(self._live_socket().fileno())
        except redis.ConnectionError:
            self._close(spent=True)
            raise

    def _live_socket(self) -> Any:
        """The connection's socket, unless something closed it meanwhile
        (``pool.disconnect``, ``broker.close``)."""
        if self._conn._sock is not self._sock or self._sock.fileno() < 0:
            raise redis.ConnectionError("the connection was closed during a wait")
        return self._sock

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until every reply is in (True) or ``timeout_s`` passes (False); for
        threads. Raises as :meth:`poll` does, which gives up on a silent connection."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        poller = select.poll()
        poller.register(self.fileno(), select.POLLIN)
        while not self.poll():
            left_s = 1.0 if end is None else min(1.0, end - time.monotonic())
            if left_s <= 0:
                return False
            poller.poll(left_s * 1000)
        return True

    @mapped
    def poll(self) -> bool:
        """Read what has arrived, without blocking; True once every reply is in.

        Raises ``BrokerUnavailable`` when the connection fails or Redis has not answered
        long after the read's timeout (a half-open connection); the connection is then
        dropped, and jobs the fetch may have delivered stay pending for the reclaimer.
        """
        if not self._open:
            return len(self._replies) == _REPLIES
        try:
            self._receive()
            while len(self._replies) < _REPLIES:
                reply = self._reader.gets()
                if reply is False:
                    break
                self._took(reply)
            if len(self._replies) < _REPLIES and time.monotonic() > self._give_up_at:
                raise redis.TimeoutError("no reply to a blocked read past its timeout")
        except BaseException:
            self._close(spent=True)
            raise
        if len(self._replies) == _REPLIES:
            broken = any(isinstance(r, _CONNECTION_SPENT) for r in self._replies)
            self._close(spent=broken or bool(self._reader.has_data()))
            return True
        return False

    def _receive(self) -> None:
        sock = self._live_socket()
        timeout = sock.gettimeout()
        try:
            sock.settimeout(0)
            while True:
                try:
                    data = sock.recv(_CHUNK)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return
                if not data:
                    raise redis.ConnectionError("Redis closed the connection")
                self._reader.feed(data)
        except OSError as exc:
            raise redis.ConnectionError(f"reading a wait's replies failed: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):  # closed meanwhile: nothing to restore
                sock.settimeout(timeout)

    def _took(self, reply: Any) -> None:
        if isinstance(reply, hiredis.PushNotification):
            return  # RESP3 sends these unasked: not one of the replies
        if not self._replies:  # CLIENT ID
            if isinstance(reply, redis.ConnectionError):  # LOADING, NOAUTH...: the other
                pass  # two replies are errors too, and result() raises theirs
            elif isinstance(reply, Exception):  # an ACL without client|id: the wait
                self._on_refused_id()  # still works, only a stop cannot cut it short
            else:
                self.client_id = int(reply)
                with self._waiting_lock:
                    self._waiting.add(self.client_id)
        self._replies.append(reply)

    @mapped
    def result(self) -> list[Delivery] | None:
        """What the fetch delivered (call once :meth:`poll` returned True); None when it
        did not run because Redis had lost the script: fetch again to load it.

        Raises when the fetch was refused, or when the read was and the fetch delivered
        nothing: jobs it delivered are always returned, whatever happened to the read.
        """
        _, woke, reply = self._replies
        if isinstance(reply, NoScriptError):
            return None
        if isinstance(reply, Exception):
            raise reply  # the fetch was refused
        got = self._finish(reply)
        if isinstance(woke, Exception) and not got:
            raise woke  # the read was refused and the fetch found nothing to hand over
        return got

    def abandon(self) -> None:
        """Give up on the replies: the connection is dropped, so Redis ends the read; a
        fetch it already ran leaves its jobs pending for the reclaimer."""
        self._close(spent=True)

    def _close(self, *, spent: bool) -> None:
        if not self._open:
            return
        self._open = False
        if self.client_id is not None:
            with self._waiting_lock:
                self._waiting.discard(self.client_id)
        if spent:
            self._conn.disconnect()
        self._pool.release(self._conn)
