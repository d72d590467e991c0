"""The broker: the only package that knows Redis commands, key names and Lua.

Everything else in stem uses its typed interface: the records in ``base`` and the roles
in ``roles`` (one small ``Protocol`` per kind of caller: ``Producer``, ``WorkerBroker``,
``ReclaimerBroker``, ``Admin``, ``QueueControl``, ``ScheduleHost``...; ``Broker`` is all of them).
``RedisBroker`` is the implementation on Redis Streams.
"""

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
from stem.broker.connection import redact
from stem.broker.redis import RedisBroker
from stem.broker.roles import (
    Admin,
    Broker,
    LeaseRenewer,
    LimitAdmin,
    LimiterBroker,
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
