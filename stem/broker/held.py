"""One held connection for the hot paths, and EVALSHA packed from a cached head.

A single-job enqueue is one round trip whose client cost rivals the server's: redis-py
checks a connection out of the pool (a lock, observability counters) and in again, and
encodes every argument, per call. :class:`HeldConnection`
checks one connection out once and reuses it; :class:`ScriptCall` packs the arguments
that never change (``EVALSHA``, the SHA, the keys, the fixed arguments) once, so a call
encodes only its own. The worker's fetches and settles go through the same connection
(:meth:`HeldConnection.call_script`, :meth:`HeldConnection.execute_each`): through
redis-py each of those round trips cost about 140 Python calls, a tenth of a thread-pool
job's (docs/performance.md, Change 19).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis
from redis.commands.core import Script
from redis.exceptions import DataError, NoScriptError, ResponseError

__all__ = ["HeldConnection", "ScriptCall", "evalsha_command", "pack", "pack_command"]


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def pack(parts: Sequence[bytes]) -> bytes:
    """``parts`` as one RESP command."""
    return b"*%d\r\n%b" % (len(parts), b"".join(map(_bulk, parts)))


def evalsha_command(script: Script, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
    """The ``EVALSHA`` command of one call of ``script``, unpacked."""
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def pack_command(args: Sequence[Any]) -> bytes:
    """One command, packed as redis-py packs it with hiredis (one C call: redis-py's own
    path adds a generator step per argument)."""
    try:
        packed: bytes = hiredis.pack_command(tuple(args))
    except TypeError as exc:
        raise DataError(str(exc)) from None
    return packed


class ScriptCall:
    """``EVALSHA`` of ``script`` with ``keys`` and leading ``args`` fixed: packed once,
    completed per call by :meth:`pack` with the call's own arguments."""

    def __init__(self, script: Script, keys: Sequence[str], args: Sequence[str]) -> None:
        self.script = script
        fixed = [b"EVALSHA", script.sha.encode(), b"%d" % len(keys)]
        fixed += [str(a).encode() for a in (*keys, *args)]
        self._count = len(fixed)
        self._head = b"".join(map(_bulk, fixed))

    def pack(self, args: Sequence[str]) -> bytes:
        """The whole command, with ``args`` after the fixed ones (UTF-8, as redis-py)."""
        out = [b"*%d\r\n" % (self._count + len(args)), self._head]
        for arg in args:
            value = arg.encode()
            out.append(b"$%d\r\n%b\r\n" % (len(value), value))
        return b"".join(out)


class HeldConnection:
    """A connection of ``client``'s pool, checked out once and reused for every call.

    Thread-safe: one thread at a time uses the held connection; a call that finds it
    busy takes another from the pool for that call alone (as every call did before), so
    threads never wait for each other. Failures are handled as redis-py's pool and
    client handle them: before each call, a connection the server closed while idle
    (``CLIENT KILL``, a timeout, a restart) is replaced, as a pool checkout does; a call
    that fails is retried by the connection's ``retry`` policy, reconnecting each time.
    After a fork, the child forgets the parent's connection and holds its own.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._pool = client.connection_pool
        self._lock = threading.Lock()
        self._conn: Any = None  # a redis-py Connection (untyped: the Any boundary)
        self._pid = os.getpid()
        # Whether to check the connection for data before each call, as redis-py's pool
        # checks at checkout: not on RESP3, where pushes (cache invalidations, maintenance
        # notifications) may arrive between calls and redis-py reads and routes them.
        protocol = self._pool.connection_kwargs.get("protocol")
        self._check_idle = getattr(self._pool, "cache", None) is None and str(protocol) != "3"

    def evalsha(self, call: ScriptCall, args: Sequence[str]) -> Any:
        """Run ``call`` with ``args``; load its script first if the server lost it."""
        return self._evalsha(call.script, call.pack(args))

    def call_script(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """``EVALSHA`` of ``script`` (as ``script(keys=..., args=...)`` does through
        redis-py); load the script first if the server lost it."""
        return self._evalsha(script, pack_command(evalsha_command(script, keys, args)))

    def _evalsha(self, script: Script, packed: bytes) -> Any:
        try:
            return self.execute(packed)
        except NoScriptError:  # it did not run: load the script, then run it
            self._client.script_load(script.script)
            return self.execute(packed)

    def execute(self, packed: bytes) -> Any:
        """Send one packed command; return its reply (an error reply raises)."""
        return self._with_connection(_run, packed)

    def execute_each(self, commands: Sequence[bytes]) -> list[Any]:
        """Send packed ``commands`` in one write, as a pipeline without a transaction;
        their replies in order, a ``ResponseError`` in the place of each one Redis
        refused (``pipeline.execute(raise_on_error=False)``). A connection lost on the
        way is handled as redis-py's pipeline handles it: the whole batch goes again by
        the connection's ``retry`` policy."""
        replies: list[Any] = self._with_connection(_run_each, commands)
        return replies

    def _with_connection(self, run: Callable[[Any, Any], Any], what: Any) -> Any:
        if self._pid != os.getpid():
            self._forget()
        if not self._lock.acquire(blocking=False):
            return self._once(run, what)
        try:
            if self._conn is None:
                self._conn = self._pool.get_connection()  # checked by the pool
            elif self._check_idle:
                _drop_if_stale(self._conn)
            return run(self._conn, what)
        finally:
            self._lock.release()

    def _once(self, run: Callable[[Any, Any], Any], what: Any) -> Any:
        conn: Any = self._pool.get_connection()
        try:
            return run(conn, what)
        finally:
            self._pool.release(conn)

    def _forget(self) -> None:
        # A child of a fork: the parent's socket is not ours (the pool resets itself).
        self._lock = threading.Lock()
        self._conn = None
        self._pid = os.getpid()

    def close(self) -> None:
        """Give the held connection back to the pool (the next call takes it again)."""
        if self._pid != os.getpid():
            self._forget()  # a fork's child: the lock may have been held at the fork
            return
        with self._lock:
            if self._conn is not None:
                self._pool.release(self._conn)
            self._conn = None


def _drop_if_stale(conn: Any) -> None:
    # What the pool checks at each checkout: a connection the server closed while it sat
    # idle (a kill, a timeout, a restart) is replaced before the command goes out, so
    # that needs no retry; a failure during the command is retried by the policy alone.
    try:
        stale = conn.can_read()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        stale = True
    if stale:
        conn.disconnect()


def _run(conn: Any, packed: bytes) -> Any:
    def attempt() -> Any:
        conn.send_packed_command((packed,))
        return conn.read_response()

    return _attempt(conn, attempt)


def _run_each(conn: Any, commands: Sequence[bytes]) -> list[Any]:
    def attempt() -> list[Any]:
        conn.send_packed_command(commands)
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:  # that command's reply: the next ones follow
                replies.append(exc)
        return replies

    replies: list[Any] = _attempt(conn, attempt)
    return replies


def _attempt(conn: Any, attempt: Callable[[], Any]) -> Any:
    try:
        return conn.retry.call_with_retry(attempt, lambda _error: conn.disconnect())
    except ResponseError:  # an error reply, read whole: the connection is in step
        raise
    except BaseException:
        # Anything else may have struck between the send and the last reply (an
        # exception raised into a job thread, a KeyboardInterrupt; a Sentinel connection
        # does not disconnect on a read error): replies may still be on their way, and
        # the next call must not read them as its own.
        conn.disconnect()
        raise
    finally:
        if conn.should_reconnect():
            conn.disconnect()
