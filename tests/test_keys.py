"""The Redis keys reference lists every key builder, and keys carry their queue's hash tag."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from stem.broker.keys import LUA_DERIVED_SUFFIXES, Keys, QueueKeys

LUA = Path(__file__).resolve().parent.parent / "stem" / "broker" / "lua"

DOC = Path(__file__).resolve().parent.parent / "docs" / "reference" / "redis-keys.md"


def _builders(cls: type) -> list[str]:
    names = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or name in {"queue", "streams", "prefix"}:
            continue
        if isinstance(member, property) or inspect.isfunction(member):
            names.append(name)
    return names


def test_every_key_builder_is_documented_in_the_redis_keys_reference() -> None:
    text = DOC.read_text()
    missing = [f"QueueKeys.{n}" for n in _builders(QueueKeys) if f"QueueKeys.{n}" not in text]
    missing += [f"Keys.{n}" for n in _builders(Keys) if f"`Keys.{n}" not in text]
    assert missing == []


def test_every_queue_key_carries_the_queue_hash_tag() -> None:
    qk = Keys("ns").queue("emails")
    keys = [*qk.streams(), qk.delayed, qk.dead, qk.stats, qk.job("j"), qk.done("j")]
    keys.append(qk.idempotency("k"))
    assert all("{emails}" in k for k in keys)


def test_every_key_a_lua_script_derives_from_the_queue_prefix_uses_a_suffix_of_keys_py() -> None:
    spelled = {
        suffix
        for path in LUA.glob("*.lua")
        for suffix in re.findall(r"prefix\s*\.\.\s*'([^']*)'", path.read_text())
    }

    assert spelled, "no script derives a key from the prefix: update this test"
    assert sorted(spelled - set(LUA_DERIVED_SUFFIXES)) == []


def test_each_lua_derived_suffix_builds_the_same_key_as_its_python_builder() -> None:
    qk = Keys("ns").queue("emails")
    built = {
        "QueueKeys.job": qk.job("J1"),
        "QueueKeys.done": qk.done("J1"),
        "QueueKeys.idempotency": qk.idempotency("J1"),
        "QueueKeys.stream": qk.stream(7),
        "QueueKeys.stats": qk.stats,
        "QueueKeys.dead": qk.dead,
    }
    lua_argument = {"job:": "J1", "done:": "J1", "idem:": "J1", "p": "7", "stats": "", "dead": ""}

    derived = {
        builder: qk.prefix + suffix + lua_argument[suffix]
        for suffix, builder in LUA_DERIVED_SUFFIXES.items()
    }

    assert derived == built
