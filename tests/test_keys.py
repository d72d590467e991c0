"""The Redis keys reference lists every key builder, keys carry their queue's hash tag,
and Lua spells no state, reason, key suffix or field name itself: it uses the constants
generated from Python, which round-trip through a real Redis."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

from stem.broker import RedisBroker
from stem.broker.keys import LUA_DERIVED_SUFFIXES, Keys, QueueKeys
from stem.broker.scripts import LUA_TABLES, lua_constants
from stem.states import TERMINAL_STATES, JobState

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


def _lua_code(path: Path) -> str:
    """A script without its comments (comments may name states and fields in prose)."""
    return "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())


def _generated_values() -> set[str]:
    return {str(member.value) for kind in LUA_TABLES.values() for member in kind}


def test_no_lua_script_spells_a_state_reason_suffix_or_field_as_a_literal() -> None:
    generated = _generated_values()

    spelled = {
        (path.name, literal)
        for path in LUA.glob("*.lua")
        for literal in re.findall(r"'([^'\n]*)'", _lua_code(path))
        if literal in generated
    }

    assert sorted(spelled) == []


def test_every_key_a_lua_script_derives_from_the_queue_prefix_uses_a_generated_suffix() -> None:
    derived = [
        (path.name, rest)
        for path in LUA.glob("*.lua")
        for rest in re.findall(r"prefix\s*\.\.\s*(\S+)", _lua_code(path))
    ]

    assert derived, "no script derives a key from the prefix: update this test"
    assert [d for d in derived if not re.match(r"K\.[A-Z_]+\b", d[1])] == []


def test_every_generated_name_a_lua_script_uses_exists_in_python() -> None:
    names = {f"{table}.{member.name}" for table, kind in LUA_TABLES.items() for member in kind}

    used = {
        (path.name, name)
        for path in LUA.glob("*.lua")
        for name in re.findall(r"\b[SRKFEC]\.[A-Za-z_]+\b", _lua_code(path))
    }

    assert sorted((file, name) for file, name in used if name not in names) == []


def test_the_generated_lua_constants_round_trip_the_python_constants(
    broker: RedisBroker,
) -> None:
    tables = ", ".join(f"{name} = {name}" for name in (*LUA_TABLES, "TERMINAL", "STATES"))
    script = lua_constants() + f"return cjson.encode({{{tables}}})"

    got = json.loads(broker.client.eval(script, 0))

    expected = {
        name: {member.name: member.value for member in kind} for name, kind in LUA_TABLES.items()
    }
    expected["TERMINAL"] = {state.value: True for state in TERMINAL_STATES}
    expected["STATES"] = {state.value: True for state in JobState}
    assert got == expected


def test_each_lua_derived_suffix_builds_the_same_key_as_its_python_builder() -> None:
    qk = Keys("ns").queue("emails")
    built = {
        "QueueKeys.job": qk.job("J1"),
        "QueueKeys.done": qk.done("J1"),
        "QueueKeys.idempotency": qk.idempotency("J1"),
        "QueueKeys.stream": qk.stream(7),
        "QueueKeys.stats": qk.stats,
        "QueueKeys.dead": qk.dead,
        "QueueKeys.limit": qk.limit("L1"),
        "QueueKeys.slots": qk.slots("L1"),
        "QueueKeys.wait": qk.wait("L1"),
        "QueueKeys.limit_waiting": qk.limit_waiting,
        "QueueKeys.limit_held": qk.limit_held,
        "QueueKeys.paused": qk.paused,
    }
    lua_argument = {"job:": "J1", "done:": "J1", "idem:": "J1", "p": "7", "stats": "", "dead": ""}
    lua_argument |= {"lim:": "L1", "slots:": "L1", "wait:": "L1", "limwait": "", "limheld": ""}
    lua_argument |= {"paused": ""}

    derived = {
        builder: qk.prefix + suffix + lua_argument[suffix]
        for suffix, builder in LUA_DERIVED_SUFFIXES.items()
    }

    assert derived == built
