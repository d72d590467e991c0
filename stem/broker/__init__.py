"""The broker: the only package that knows Redis commands, key names and Lua.

Everything else in stem uses its typed interface: the records in ``base`` and the roles
in ``roles`` (one small ``Protocol`` per kind of caller: ``Producer``, ``WorkerBroker``,
``ReclaimerBroker``, ``Admin``, ``QueueControl``, ``ScheduleHost``...; ``Broker`` is all of them).
``RedisBroker`` is the implementation on Redis Streams.

Only ``RedisBroker`` and ``redact`` need redis-py, and they are imported on first use
(``__getattr__`` below): the records and roles are plain Python, so what imports
``stem`` without talking to Redis (a process-pool child, ``stem --help``) does not pay
for redis-py (about 20 MiB of RSS with what it loads; docs/performance.md).
"""

from typing import TYPE_CHECKING, Any

from stem.broker.base import (
    MAX_DELAY_S,
    RESULT_TTL_S,
    DeadEntry,
    DefinitionChange,
    Delivery,
    JobRecord,
    LimitRound,
    LimitSpec,
    NewJob,
    QueueStats,
    ReclaimedJob,
    ReclaimStats,
    Renewal,
    ScheduleSnapshot,
    Settlement,
    json_or_text,
)
from stem.broker.roles import (
    Admin,
    Broker,
    LeaseRenewer,
    LimitAdmin,
    LimiterBroker,
    PendingFetch,
    Presence,
    Producer,
    Promoter,
    QueueControl,
    ReclaimerBroker,
    ScheduleHost,
    ScheduleStore,
    WorkerBroker,
    WorkerControl,
)

if TYPE_CHECKING:
    from stem.broker.connection import redact
    from stem.broker.redis import RedisBroker


def __getattr__(name: str) -> Any:
    """``RedisBroker`` and ``redact``, imported (with redis-py) when first asked for."""
    if name == "RedisBroker":
        from stem.broker.redis import RedisBroker

        return RedisBroker
    if name == "redact":
        from stem.broker.connection import redact

        return redact
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MAX_DELAY_S",
    "RESULT_TTL_S",
    "Admin",
    "Broker",
    "DeadEntry",
    "DefinitionChange",
    "Delivery",
    "JobRecord",
    "LeaseRenewer",
    "LimitAdmin",
    "LimitRound",
    "LimitSpec",
    "LimiterBroker",
    "NewJob",
    "PendingFetch",
    "Presence",
    "Producer",
    "Promoter",
    "QueueControl",
    "QueueStats",
    "ReclaimStats",
    "ReclaimedJob",
    "ReclaimerBroker",
    "RedisBroker",
    "Renewal",
    "ScheduleHost",
    "ScheduleSnapshot",
    "ScheduleStore",
    "Settlement",
    "WorkerBroker",
    "WorkerControl",
    "json_or_text",
    "redact",
]
