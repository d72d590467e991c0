"""Opening Redis clients from URLs, and turning Redis failures into ``BrokerUnavailable``.

Supported URLs are redis-py's: ``redis://[user:password@]host:port/db``, ``rediss://``
(TLS) and ``unix:///path/to/socket?db=0``. Passwords never appear in messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from stem.errors import BrokerUnavailable, ConfigError

P = ParamSpec("P")
T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")


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


class HasUrl(Protocol):
    """Anything that knows which Redis it talks to."""

    url: str


S = TypeVar("S", bound=HasUrl)


def mapped(fn: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Decorate a broker method so Redis failures raise ``BrokerUnavailable`` (one line)."""

    @functools.wraps(fn)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot reach Redis at {redact(self.url)}: {exc}") from exc
        except redis.ResponseError as exc:
            where = redact(self.url)
            raise BrokerUnavailable(f"Redis at {where} refused a command: {exc}") from exc

    return call  # type: ignore[return-value]  # functools.wraps' _Wrapped type
