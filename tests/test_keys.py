"""The Redis keys reference lists every key builder, and keys carry their queue's hash tag."""

from __future__ import annotations

import inspect
from pathlib import Path

from stem.broker.keys import Keys, QueueKeys

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
