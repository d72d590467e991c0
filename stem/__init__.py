"""stem: background jobs for Python on Redis Streams.

The public surface: ``Stem`` (the app), ``Task``, ``JobHandle``, ``RetryPolicy``,
``JobState``, ``current_job()``, ``Middleware``, and the error tree in ``stem.errors``.
"""

from stem.app import Stem
from stem.context import JobContext, current_job
from stem.errors import (
    BrokerUnavailable,
    ConfigError,
    EnqueueIncomplete,
    EnqueueNotReplicated,
    HardTimeLimitExceeded,
    JobFailed,
    JobNotFound,
    JobRevoked,
    ResultTimeout,
    Retry,
    SerializationError,
    SoftTimeLimitExceeded,
    StemError,
)
from stem.handle import JobHandle
from stem.middleware.base import Middleware
from stem.states import TERMINAL_STATES, JobState
from stem.task import Pool, RetryPolicy, Task

__all__ = [
    "TERMINAL_STATES",
    "BrokerUnavailable",
    "ConfigError",
    "EnqueueIncomplete",
    "EnqueueNotReplicated",
    "HardTimeLimitExceeded",
    "JobContext",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "JobRevoked",
    "JobState",
    "Middleware",
    "Pool",
    "ResultTimeout",
    "Retry",
    "RetryPolicy",
    "SerializationError",
    "SoftTimeLimitExceeded",
    "Stem",
    "StemError",
    "Task",
    "current_job",
]

__version__ = "0.1.0"
