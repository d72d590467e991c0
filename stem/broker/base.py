"""The broker's typed interface: the records that cross it and the ``Broker`` protocol.

Workers, beat, the reclaimer, the CLI and the app talk to Redis only through this
interface (trio's ``_core`` rule): they never see a key name, a command or a script.
Every method is synchronous and blocking; actors call them through
``trio.to_thread.run_sync`` and batch to amortise the thread hop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from stem.outcome import Verdict
from stem.states import JobState

#: The longest delay or ETA a job may have (ten years): delayed-set scores stay exact
#: integers of milliseconds, far below 2**53. Producers refuse more with ``ConfigError``;
#: a retry delay a task asks for is capped at it.
MAX_DELAY_S = 10 * 365 * 86_400


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to add: its id, encoded envelope and when it becomes ready."""

    id: str
    envelope: str
    priority: int = 0
    eta_ms: int = 0
    idempotency_key: str = ""
    idempotency_ttl_s: int = 86_400
    chosen_id: bool = False  # the caller picked the id: check it for a repeat


@dataclass(frozen=True, slots=True)
class Delivery:
    """One job handed to a consumer; ``envelope`` is None when there is no record."""

    queue: str
    priority: int
    entry_id: str
    job_id: str | None
    envelope: bytes | None
    attempt: int
    deliveries: int
    raw: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """How to settle one delivery; ``payload`` is the result or error JSON.

    Built from a :class:`stem.outcome.Outcome` by the worker's executor; ``verdict`` is one
    of :data:`stem.outcome.SETTLED_VERDICTS` (anything but ``COMPLETE`` and ``RETRY`` is
    dead-lettered).
    """

    delivery: Delivery
    verdict: Verdict
    payload: str
    delay_ms: int = 0
    reason: str = ""
    state: JobState = JobState.DEAD


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the result backend knows about one job."""

    id: str
    queue: str
    state: JobState
    attempt: int
    deliveries: int
    envelope: str
    result: str | None
    error: str | None
    reason: str | None
    enq_ms: int | None
    start_ms: int | None
    end_ms: int | None
    eta_ms: int | None
    worker: str | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Depth of one queue, sampled from Redis."""

    queue: str
    ready: int
    delayed: int
    pending: int
    dead: int


@dataclass(frozen=True, slots=True)
class ReclaimStats:
    """What one reclaim page did."""

    cursor: str
    requeued: int
    dead_lettered: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class DeadEntry:
    """One dead-letter queue entry."""

    entry_id: str
    job_id: str
    reason: str
    error: str
    envelope: str
    state: str
    ts_ms: int


class Broker(Protocol):
    """What stem needs from a broker. ``RedisBroker`` is the implementation."""

    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[tuple[str, bool]]: ...

    def fetch(self, queue: str, consumer: str, count: int) -> list[Delivery]: ...

    def wait_ready(self, queues: Sequence[str], timeout_ms: int) -> bool: ...

    def settle(self, settlements: Sequence[Settlement]) -> list[int]: ...

    def renew(self, queue: str, consumer: str, held: Mapping[int, Sequence[str]]) -> list[str]: ...

    def release(
        self, deliveries: Sequence[Delivery], *, undo_delivery: bool, max_deliveries: int = 0
    ) -> int: ...

    def promote_due(self, queue: str, limit: int = 1000) -> tuple[int, int]: ...

    def job(self, queue: str, job_id: str) -> JobRecord | None: ...

    def wait_done(self, queue: str, job_id: str, timeout_s: float) -> bool: ...

    def queue_stats(self, queue: str) -> QueueStats: ...

    def close(self) -> None: ...
