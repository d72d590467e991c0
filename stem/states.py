"""Job states: an Enum and the named sets that code tests against (never raw strings).

::

    scheduled ──(due)──> queued ──(delivered)──> started ──> succeeded
                            ^                      │  └────> failed  (raised, no retry left)
                            │                      │  └────> dead    (could not run: bad
                            └─(retry due)─ retrying <┘               payload, poison, ...)
                         queued <──(limit allows)── throttled <──(a limit refused it at fetch)

A terminal state is final: nothing moves a job out of it except an explicit dead-letter
replay by an operator. ``failed`` and ``dead`` jobs are both in the dead-letter queue.
"""

from __future__ import annotations

import enum


class JobState(enum.Enum):
    """Where a job is in its life; the value is what Redis stores."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    STARTED = "started"
    RETRYING = "retrying"
    THROTTLED = "throttled"  # waiting for a limit (rate, concurrency, lock) to allow it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD})
WAITING_STATES = frozenset(
    {JobState.SCHEDULED, JobState.QUEUED, JobState.RETRYING, JobState.THROTTLED}
)
DEAD_LETTER_STATES = frozenset({JobState.FAILED, JobState.DEAD})


class DeadReason(enum.Enum):
    """Why a job is in the dead-letter queue (stored with the DLQ entry)."""

    MAX_RETRIES = "max-retries"
    NOT_RETRYABLE = "not-retryable"
    MAX_DELIVERIES = "max-deliveries"
    HARD_TIME_LIMIT = "hard-time-limit"
    UNDECODABLE = "undecodable"
    MISSING_RECORD = "missing-record"
    CORRUPT_RECORD = "corrupt-record"  # a record holds values stem did not write
    UNKNOWN_TASK = "unknown-task"
    BAD_ARGUMENTS = "bad-arguments"
    BAD_SIGNATURE = "bad-signature"
