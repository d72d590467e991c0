"""The broker: the only package that knows Redis commands, key names and Lua.

Everything else in stem uses the typed interface in ``base`` (``Broker`` and its
records); ``RedisBroker`` is the implementation on Redis Streams.
"""

from stem.broker.base import (
    MAX_DELAY_S,
    Broker,
    DeadEntry,
    Delivery,
    JobRecord,
    NewJob,
    QueueStats,
    ReclaimStats,
    Settlement,
)
from stem.broker.redis import RedisBroker

__all__ = [
    "MAX_DELAY_S",
    "Broker",
    "DeadEntry",
    "Delivery",
    "JobRecord",
    "NewJob",
    "QueueStats",
    "ReclaimStats",
    "RedisBroker",
    "Settlement",
]
