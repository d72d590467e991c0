"""Opening Redis clients from URLs, and turning Redis failures into stem's errors.

Supported URLs are redis-py's: ``redis://[user:password@]host:port/db``, ``rediss://``
(TLS) and ``unix:///path/to/socket?db=0``. Passwords never appear in messages.

Every failure is sorted by whether waiting can heal it (see :class:`Faults`):
``BrokerUnavailable`` (lost connection, timeout, loading, out of memory, a failover) is
retried by the actors; ``BrokerRefused`` (``NOPERM``, ``WRONGTYPE``, a script error, bad
credentials, a read-only replica for longer than ``READONLY_GRACE_S``) stops them.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthorizationError
from redis.retry import Retry

from stem.errors import BrokerRefused, BrokerUnavailable, ConfigError, OutsideError

P = ParamSpec("P")
T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")

#: How long a read-only replica (``READONLY``) counts as a failover in progress; past it,
#: the URL points at a replica for good and the refusal is permanent.
READONLY_GRACE_S = 60.0

#: Error prefixes of refusals that pass by themselves: a server loading its data or busy
#: with a script, memory that will be freed, a cluster or replica mid-failover.
TRANSIENT_PREFIXES: tuple[str, ...] = ("LOADING", "BUSY", "OOM", "MASTERDOWN", "TRYAGAIN")
TRANSIENT_PREFIXES += ("CLUSTERDOWN", "NOREPLICAS", "MISCONF")
#: The same refusals as redis-py raises them: its parser strips the prefix from the message
#: of the codes it knows (``OOM command not allowed`` arrives as an ``OutOfMemoryError``
#: whose text starts ``command not allowed``), so the prefix test alone misses them.
TRANSIENT_ERRORS: tuple[type[redis.RedisError], ...] = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,  # and MasterDownError
)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and error lines)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def open_client(
    url: str, *, max_connections: int | None = None, deadline_s: float | None = None
) -> redis.Redis:
    """A client for ``url`` (bytes replies, health-checked pooled connections).

    With ``deadline_s`` the client is for short, latency-bound calls (lease renewals):
    connect and socket timeouts are ``deadline_s``, there is no health-check PING and
    redis-py does not retry, so one call fails after at most ``deadline_s`` and the
    caller decides when to try again. Without it, calls wait up to 30 s per attempt.

    Raises :class:`ConfigError` for a URL that is not a Redis URL; connection problems
    surface on first use as :class:`BrokerUnavailable` (see :func:`mapped`).
    """
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigError(
            f"invalid Redis URL {redact(url)!r}: scheme must be one of {', '.join(SCHEMES)}"
        )
    options: dict[str, object] = {
        "health_check_interval": 30,
        "socket_connect_timeout": 5,
        # Above the longest blocking wait stem issues (5 s slices), so a blocked read
        # is never mistaken for a dead connection; still catches a hung server.
        "socket_timeout": 30,
    }
    if deadline_s is not None:
        options = {
            "health_check_interval": 0,
            "socket_connect_timeout": deadline_s,
            "socket_timeout": deadline_s,
            # redis-py retries 10 times by default: that would multiply the deadline.
            "retry": Retry(NoBackoff(), 0),
        }
    try:
        return redis.Redis.from_url(
            url,
            decode_responses=False,
            socket_keepalive=True,
            max_connections=max_connections,
            **options,
        )
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {redact(url)!r}: {exc}") from None


class Faults:
    """Sorts Redis failures into ``BrokerUnavailable`` (wait) or ``BrokerRefused`` (stop).

    Remembers when ``READONLY`` replies began, so that a failover (seconds) is waited out
    while a URL that points at a replica for good (``READONLY_GRACE_S``) is refused.
    ``ok()`` after any successful call ends such a run. Thread-safe.
    """

    def __init__(self, url: str, readonly_grace_s: float = READONLY_GRACE_S) -> None:
        self.url = url
        self.readonly_grace_s = readonly_grace_s
        self._readonly_since: float | None = None
        self._lock = threading.Lock()

    def ok(self) -> None:
        """A call succeeded: a run of READONLY replies is over."""
        if self._readonly_since is not None:
            with self._lock:
                self._readonly_since = None

    def classify(self, exc: redis.RedisError) -> OutsideError:
        """The stem error for ``exc`` (one line, no password)."""
        where = redact(self.url)
        if isinstance(exc, redis.AuthenticationError | AuthorizationError):
            return BrokerRefused(f"Redis at {where} refused the credentials: {exc}")
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            return BrokerUnavailable(f"cannot reach Redis at {where}: {exc}")
        message = f"Redis at {where} refused a command: {exc}"
        if isinstance(exc, redis.ReadOnlyError) or str(exc).startswith("READONLY"):
            return self._readonly(message)
        if isinstance(exc, TRANSIENT_ERRORS) or str(exc).startswith(TRANSIENT_PREFIXES):
            return BrokerUnavailable(message)
        return BrokerRefused(message)

    def _readonly(self, message: str) -> OutsideError:
        with self._lock:
            now = time.monotonic()
            if self._readonly_since is None:
                self._readonly_since = now
            waited_s = now - self._readonly_since
        if waited_s < self.readonly_grace_s:
            return BrokerUnavailable(message)
        return BrokerRefused(f"{message} (a read-only replica for {waited_s:.0f} s)")


class HasUrl(Protocol):
    """Anything that knows which Redis it talks to and how to sort its failures."""

    url: str
    faults: Faults


S = TypeVar("S", bound=HasUrl)


def mapped(fn: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Decorate a broker method so Redis failures raise ``BrokerUnavailable`` or
    ``BrokerRefused`` (one line each; see :class:`Faults`)."""

    @functools.wraps(fn)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result = fn(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise self.faults.classify(exc) from exc
        self.faults.ok()
        return result

    return call  # type: ignore[return-value]  # functools.wraps' _Wrapped type
