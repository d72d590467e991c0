"""Redis URLs: checking them, hiding their passwords, and parsing Sentinel URLs.

stem accepts redis-py's URLs, ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS,
with ``ssl_*`` query parameters) and ``unix:///path/to/socket?db=0``, plus Sentinel URLs::

    redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db][?...]

whose hosts are the sentinels; the credentials and query parameters apply to the master's
connections, except ``sentinel_username`` and ``sentinel_password``, which authenticate to
the sentinels themselves. ``docs/guides/security.md`` lists the parameters.

Redis Cluster URLs name one or more seed nodes (any node will do; the client learns the rest
from ``CLUSTER SLOTS``); ``rediss+cluster://`` is the same over TLS. A cluster has no
databases, so the path is empty or ``/0``::

    redis+cluster://[user:password@]host:port[,host:port...][/][?...]

A query parameter that redis-py's connections do not take is refused here, with the URL and
the parameter named: redis-py itself would accept the URL and fail on first use with a
``TypeError`` (``ssl_ca_cert=`` for ``ssl_ca_certs=`` must not become a traceback).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import redis
from redis.connection import AbstractConnection

from stem.errors import ConfigError

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME, *CLUSTER_SCHEMES)

#: Query parameters of a Sentinel URL that go to the sentinels rather than the master.
SENTINEL_PARAMETERS = ("sentinel_username", "sentinel_password")


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and error lines)."""
    parts = urlsplit(url)
    query = "&".join(
        f"{name}=***" if name in ("password", "sentinel_password") else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    if parts.password is None:
        return urlunsplit(parts._replace(query=query)) if query != parts.query else url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}", query=query))


@cache
def connection_parameters() -> frozenset[str]:
    """Every keyword argument a redis-py connection (plain, TLS or unix socket) takes."""
    names: set[str] = {"max_connections"}
    classes = (AbstractConnection, redis.Connection, redis.SSLConnection)
    for cls in (*classes, redis.UnixDomainSocketConnection):
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if param.kind is param.KEYWORD_ONLY or param.kind is param.POSITIONAL_OR_KEYWORD:
                names.add(name)
    return frozenset(names - {"self"})


def check_url(url: str) -> str:
    """Return the scheme of ``url``; raise ``ConfigError`` naming what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"invalid Redis URL {redact(url)!r}: scheme must be one of {', '.join(SCHEMES)}"
        )
    known = connection_parameters()
    if parts.scheme == SENTINEL_SCHEME:
        known = known | set(SENTINEL_PARAMETERS)
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if name not in known:
            raise ConfigError(
                f"invalid Redis URL {redact(url)!r}: unknown parameter {name!r} "
                "(see docs/guides/security.md for the ssl_* ones)"
            )
    return parts.scheme


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    #: Arguments of the master's connections (credentials, timeouts, ssl_* ...).
    master: dict[str, object] = field(default_factory=dict)
    #: Arguments of the connections to the sentinels.
    sentinel: dict[str, object] = field(default_factory=dict)


def _hosts(url: str, hosts: str) -> list[tuple[str, int]]:
    out = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ConfigError(
                f"invalid Redis URL {redact(url)!r}: expected host:port[,host:port...], "
                f"got {host!r}"
            )
        out.append((name.strip("[]"), int(port)))
    return out


def _typed_query(query: str) -> dict[str, object]:
    """Query parameters typed as redis-py types its own (ints, bools)."""
    if not query:
        return {}
    typed: dict[str, object] = redis.connection.parse_url(f"redis://h/?{query}")  # type: ignore[no-untyped-call]
    return {k: v for k, v in typed.items() if k not in ("host", "port", "db")}


def _credentials(userinfo: str) -> dict[str, object]:
    if not userinfo:
        return {}
    user, _, password = userinfo.partition(":")
    return {"username": unquote(user) or None, "password": unquote(password) or None}


@dataclass(frozen=True)
class ClusterUrl:
    """A parsed ``redis+cluster://`` URL: seed nodes and the nodes' connection arguments."""

    nodes: list[tuple[str, int]]
    options: dict[str, object] = field(default_factory=dict)


def parse_cluster_url(url: str) -> ClusterUrl:
    """Split a ``redis+cluster://`` URL; raise ``ConfigError`` when it is malformed."""
    scheme = check_url(url)
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = _hosts(url, hosts)
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigError(
            f"invalid Redis URL {redact(url)!r}: a cluster has only database 0, "
            f"got {parts.path!r} after the hosts"
        )
    options = {**_credentials(userinfo), **_typed_query(parts.query)}
    if scheme == "rediss+cluster":
        options["ssl"] = True
    return ClusterUrl(nodes, options)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Split a ``redis+sentinel://`` URL; raise ``ConfigError`` when it is malformed."""
    check_url(url)
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    bad = f"invalid Redis URL {redact(url)!r}"
    sentinels = _hosts(url, hosts)
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(f"{bad}: expected /service_name or /service_name/db after the hosts")
    master = _credentials(userinfo)
    sentinel: dict[str, object] = {}
    # The URL parser of redis-py types its own parameters (ints, bools): reuse it.
    for name, value in _typed_query(parts.query).items():
        if name in SENTINEL_PARAMETERS:
            sentinel[name.removeprefix("sentinel_")] = value
        else:
            master[name] = value
    return SentinelUrl(sentinels, path[0], int(path[1]) if len(path) == 2 else 0, master, sentinel)
