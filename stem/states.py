"""Job states: an Enum and the named sets that code tests against (never raw strings).

::

    scheduled ──(due)──> queued ──(delivered)──> started ──> succeeded
                            ^                      │  └────> failed  (raised, no retry left)
                            │                      │  └────> dead    (could not run: bad
                            └─(retry due)─ retrying <┘               payload, poison, ...)
                         queued <──(limit allows)── throttled <──(a limit refused it at fetch)

    scheduled | queued | retrying | throttled | started ──(stem job revoke)──> revoked

A terminal state is final: nothing moves a job out of it except an explicit dead-letter
replay by an operator. ``failed`` and ``dead`` jobs are both in the dead-letter queue.
``revoked`` is terminal but not dead-lettered: an operator decided the job must not run
(``stem job revoke``), so there is nothing to inspect or replay; its record says so until
it expires (``result_ttl_s``), and a leftover stream entry of it is dropped at fetch like
any finished job's duplicate. A ``started`` job is revoked only with ``--terminate``: its
worker then cancels it within about a second (see ``stem.worker.revoke``).
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
    REVOKED = "revoked"  # an operator revoked it (stem job revoke); never dead-lettered


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD, JobState.REVOKED})
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
