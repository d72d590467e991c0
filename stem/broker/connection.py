"""Opening Redis clients from URLs, and turning Redis failures into stem's errors.

Supported URLs (see :mod:`stem.broker.urls`) are redis-py's: ``redis://[user:password@]
host:port/db``, ``rediss://`` (TLS) and ``unix:///path/to/socket?db=0``, and
``redis+sentinel://host:port[,host:port...]/service_name[/db]`` and
``redis+cluster://host:port[,host:port...]/`` (redis-py's ``RedisCluster``). Passwords never
appear in messages.

Every failure is sorted by whether waiting can heal it (see :class:`Faults`):
``BrokerUnavailable`` (lost connection, timeout, loading, out of memory, a failover) is
retried by the actors; ``BrokerRefused`` (``NOPERM``, ``WRONGTYPE``, a script error, bad
credentials, a TLS certificate that does not verify, a read-only replica for longer than
``READONLY_GRACE_S``) stops them. On a cluster, the redirections and refusals of a
resharding or failover (``MOVED``, ``ASK``, ``TRYAGAIN``, ``CLUSTERDOWN``, an uncovered slot)
are retried by redis-py's cluster client first, then count as ``BrokerUnavailable``.
"""

from __future__ import annotations

import functools
import hashlib
import re
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    AuthorizationError,
    ClusterDownError,
    ClusterError,
    MasterDownError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.retry import Retry
from redis.sentinel import Sentinel

from stem.broker import scripts
from stem.broker.urls import (
    CLUSTER_SCHEMES,
    SCHEMES,
    SENTINEL_SCHEME,
    check_url,
    parse_cluster_url,
    parse_sentinel_url,
    redact,
)
from stem.errors import BrokerRefused, BrokerUnavailable, ConfigError, OutsideError

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["SCHEMES", "Client", "Faults", "disconnect", "is_cluster", "mapped", "open_client"]
__all__ += ["raise_cluster_errors", "redact"]

#: What ``open_client`` returns: one Redis (standalone or Sentinel's master) or a cluster.
Client = redis.Redis | RedisCluster

#: Failures a Redis Cluster gives while it reshards or fails over; redis-py's cluster
#: client retries them (following the new slot map) before they reach stem.
CLUSTER_TRANSIENT: tuple[type[BaseException], ...] = (
    AskError,
    ClusterDownError,
    ClusterError,
    MasterDownError,
    MovedError,
    SlotNotCoveredError,
    TryAgainError,
)

#: What redis-py's cluster client says when it reads the slot map in the middle of a
#: failover: the seed nodes disagree on a slot's master, or a failed master's slots are
#: not yet taken over. Both heal once the cluster has elected and announced new masters.
CLUSTER_MAP_IN_FLUX: tuple[str, ...] = (
    "cannot be connected",
    "could not agree on a valid slots cache",
    "All slots are not covered",
)

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

#: Where the ACL lines for each role are documented (named in NOPERM error lines).
ACL_DOC = "docs/guides/security.md"


def open_client(
    url: str, *, max_connections: int | None = None, deadline_s: float | None = None
) -> Client:
    """A client for ``url`` (bytes replies, health-checked pooled connections).

    With ``deadline_s`` the client is for short, latency-bound calls (lease renewals):
    connect and socket timeouts are ``deadline_s``, there is no health-check PING and
    redis-py does not retry, so one call fails after at most ``deadline_s`` and the
    caller decides when to try again. Without it, calls wait up to 30 s per attempt.

    A Sentinel URL gives a client of the current master: its pool asks the sentinels
    again after a lost connection or a ``READONLY`` reply (a failover), so callers see
    that as a ``BrokerUnavailable`` that heals. A cluster URL gives redis-py's
    ``RedisCluster``, which reads the slot map from the seed nodes now (so an unreachable
    cluster raises ``BrokerUnavailable`` here) and follows it as it changes.

    Raises :class:`ConfigError` for a URL that is not a Redis URL; connection problems
    surface on first use as :class:`BrokerUnavailable` (see :func:`mapped`).
    """
    scheme = check_url(url)
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
    options.update(decode_responses=False, max_connections=max_connections)
    if scheme != "unix":  # TCP keepalive; a Unix socket connection refuses the argument
        options["socket_keepalive"] = True
    if scheme == SENTINEL_SCHEME:
        return _sentinel_client(url, options, deadline_s)
    if scheme in CLUSTER_SCHEMES:
        return _cluster_client(url, options, deadline_s)
    try:
        client = redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {redact(url)!r}: {exc}") from None
    client.connection_pool.connection_kwargs.update(_deadline(deadline_s))
    return client


def _deadline(deadline_s: float | None) -> dict[str, object]:
    """The timeouts a deadline client's connections keep whatever its URL's query asks
    (a URL's ``?socket_timeout=`` must not stretch the deadline); none without one."""
    if deadline_s is None:
        return {}
    return {"socket_timeout": deadline_s, "socket_connect_timeout": deadline_s}


def _sentinel_client(url: str, options: dict[str, object], deadline_s: float | None) -> redis.Redis:
    try:
        parsed = parse_sentinel_url(url)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL {redact(url)!r}: {exc}") from None
    sentinel_kwargs: dict[str, object] = {
        k: options[k] for k in ("socket_connect_timeout", "socket_timeout")
    }
    if deadline_s is not None:
        # Finding the master asks the sentinels one after another, each with redis-py's
        # default retries: with sentinels that accept but never answer (a half-open
        # network) a 0.5 s deadline took 30 s. Each sentinel gets one try and its share
        # of the deadline, so the lookup as a whole keeps to it.
        share_s = deadline_s / len(parsed.sentinels)
        sentinel_kwargs.update(
            socket_connect_timeout=share_s, socket_timeout=share_s, retry=Retry(NoBackoff(), 0)
        )
    sentinel_kwargs.update(parsed.sentinel)
    sentinel = Sentinel(parsed.sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    master_options = {**options, **parsed.master, "db": parsed.db, **_deadline(deadline_s)}
    if master_options.get("max_connections") is None:
        master_options.pop("max_connections")
    client = sentinel.master_for(  # type: ignore[no-untyped-call]
        parsed.service, redis_class=redis.Redis, **master_options
    )
    return cast(redis.Redis, client)


def _cluster_client(url: str, options: dict[str, object], deadline_s: float | None) -> RedisCluster:
    parsed = parse_cluster_url(url)
    node_options = {**options, **parsed.options, **_deadline(deadline_s)}
    if node_options.get("max_connections") is None:
        node_options.pop("max_connections")
    nodes = [ClusterNode(host, port) for host, port in parsed.nodes]  # type: ignore[no-untyped-call]
    # Built with redis-py's own retries: the client asks its default node (the master of
    # slot 0 in the map it read) for COMMAND as it is built, and while that master fails
    # over only a retry moves the question to another node. A deadline client's "no
    # retry" applies from its first call on.
    retry = node_options.pop("retry", None)
    try:
        client = RedisCluster(startup_nodes=nodes, **node_options)  # type: ignore[arg-type]
    except (redis.RedisError, RedisClusterException) as exc:
        raise Faults(url).classify(exc) from exc
    if isinstance(retry, Retry):
        client.set_retry(retry)
    return client


def raise_cluster_errors(replies: list[Any]) -> list[Any]:
    """Return ``replies`` (of a pipeline run with ``raise_on_error=False``, which tolerates
    a missing stream's errors); raise the first redirection or cluster failure among them,
    which means the call did not run where it should have."""
    for reply in replies:
        if isinstance(reply, CLUSTER_TRANSIENT):
            raise reply
    return replies


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (so multi-key commands must stay in
    one hash slot)."""
    return isinstance(client, RedisCluster)


def disconnect(client: Client) -> None:
    """Close every pooled connection of ``client``; the next call opens fresh ones."""
    if isinstance(client, RedisCluster):
        client.disconnect_connection_pools()  # type: ignore[no-untyped-call]
    else:
        client.connection_pool.disconnect()


@functools.cache
def _script_names() -> dict[str, str]:
    """SHA1 of each broker script's source -> its name (to name it in NOPERM lines)."""
    return {
        hashlib.sha1(scripts.source(name).encode(), usedforsecurity=False).hexdigest(): name
        for name in scripts.NAMES
    }


def _verify_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error somewhere in ``exc``'s chain, if any."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None or isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _noperm(exc: redis.RedisError) -> str | None:
    """What an ACL refused, in words, if ``exc`` is a NOPERM refusal; else None.

    redis-py drops the ``NOPERM`` prefix; a command inside a script is refused with a
    message that names the script's SHA1 (Redis 7 ``script: <sha>``, 6.2 ``f_<sha>``)
    but not the command.
    """
    text = str(exc)
    command = re.search(r"no permissions to run the '([^']+)' command", text)
    if command:
        return f"the user may not run {command.group(1)!r}"
    if isinstance(exc, NoPermissionError) and "keys" in text:
        return "the user may not access a key this command uses"
    if "The user executing the script can't" not in text:
        return None
    sha = re.search(r"\b(?:script: |f_)([0-9a-f]{40})", text)
    name = _script_names().get(sha.group(1), "a") if sha else "a"
    script = f"stem's {name!r} script" if name != "a" else "a script"
    if "access at least one of the keys" in text:
        return f"the user may not access a key that {script} uses"
    return f"the user may not run a command that {script} calls"


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

    def classify(self, exc: redis.RedisError | RedisClusterException) -> OutsideError:
        """The stem error for ``exc`` (one line, no password)."""
        where = redact(self.url)
        if not isinstance(exc, redis.RedisError) or isinstance(exc, CLUSTER_TRANSIENT):
            return self._cluster(exc)
        if isinstance(exc, redis.AuthenticationError | AuthorizationError):
            return BrokerRefused(f"Redis at {where} refused the credentials: {exc}")
        refused = _noperm(exc)
        if refused is not None:
            return BrokerRefused(
                f"Redis at {where} refused: {refused} (NOPERM: check the ACL, see {ACL_DOC})"
            )
        verify = _verify_failure(exc)
        if verify is not None:
            # Waiting cannot make a certificate valid: stop, and say which check failed.
            return BrokerRefused(
                f"Redis at {where} failed TLS verification: {verify.verify_message} "
                "(check ssl_ca_certs, and that the server certificate names this host)"
            )
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            return BrokerUnavailable(f"cannot reach Redis at {where}: {exc}")
        message = f"Redis at {where} refused a command: {exc}"
        if isinstance(exc, redis.ReadOnlyError) or str(exc).startswith("READONLY"):
            return self._readonly(message)
        if isinstance(exc, TRANSIENT_ERRORS) or str(exc).startswith(TRANSIENT_PREFIXES):
            return BrokerUnavailable(message)
        return BrokerRefused(message)

    def _cluster(self, exc: BaseException) -> OutsideError:
        where = redact(self.url)
        what = f"{type(exc).__name__}: {exc}"
        plain = urlsplit(self.url).scheme not in CLUSTER_SCHEMES
        if plain and isinstance(exc, MovedError | AskError):
            # A plain client cannot follow a redirection: the URL is the mistake.
            return BrokerRefused(
                f"Redis at {where} is a Redis Cluster node (it redirected a command, {what}): "
                "use a redis+cluster://host:port[,host:port...]/ URL"
            )
        if isinstance(exc, CLUSTER_TRANSIENT) or any(m in str(exc) for m in CLUSTER_MAP_IN_FLUX):
            return BrokerUnavailable(
                f"Redis Cluster at {where} is resharding, failing over or out of reach: {what}"
            )
        return BrokerRefused(f"Redis Cluster at {where} refused a command: {what}")

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
        except (redis.RedisError, RedisClusterException) as exc:
            raise self.faults.classify(exc) from exc
        self.faults.ok()
        return result

    return call  # type: ignore[return-value]  # functools.wraps' _Wrapped type
