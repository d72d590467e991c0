"""The records that cross the broker's interface (its roles are in ``roles``).

Workers, beat, the reclaimer, the CLI and the app talk to Redis only through that
interface (trio's ``_core`` rule): they never see a key name, a command or a script.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from stem.outcome import Verdict
from stem.states import JobState

#: The longest delay or ETA a job may have (ten years): delayed-set scores stay exact
#: integers of milliseconds, far below 2**53. Producers refuse more with ``ConfigError``;
#: a retry delay a task asks for is capped at it.
MAX_DELAY_S = 10 * 365 * 86_400
#: How long a settled job's record is kept by default: an hour (docs/scaling.md,
#: "Redis memory per job", has the arithmetic).
RESULT_TTL_S = 3600


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
    limits: str = ""  # the limit instances it is under, "<definition>=<instance>,..."
    keep_result_s: int | None = None  # keep the settled record this long (None: default)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One limit definition (see ``stem.limits``): per instance, at most ``concurrency``
    jobs held at once (0: no bound) and ``rate_per_s`` starts a second from a token bucket
    of ``1 + burst`` tokens (0: no rate)."""

    name: str
    concurrency: int = 0
    rate_per_s: float = 0.0
    burst: int = 0


@dataclass(frozen=True, slots=True)
class LimitRound:
    """What one round of the limiter did in one queue."""

    released: int
    slots_freed: int
    waiting_instances: int
    waited_ms: int
    next_token_ms: int = -1  # until a blocked instance's next token (-1: none waits for one)


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
    of :data:`stem.outcome.SETTLED_VERDICTS` (anything but ``COMPLETE``, ``REVOKED`` and
    ``RETRY`` is dead-lettered; ``REVOKED`` only acks: the record is revoked already).
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
    #: The task's name: from the envelope, or, once settled (the envelope is not kept
    #: then), from the record's own field.
    task: str | None = None

    @property
    def result_value(self) -> Any:
        """``result`` decoded from JSON (None when there is none); the raw text if it is
        not JSON (someone else wrote it). ``result`` itself stays the stored text."""
        return json_or_text(self.result)

    @property
    def headers(self) -> dict[str, str]:
        """The headers the job was enqueued with (``{}`` if the envelope has none, or once
        the job settled: a settled record does not keep the envelope)."""
        envelope = json_or_text(self.envelope)
        headers = envelope.get("headers") if isinstance(envelope, dict) else None
        return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def json_or_text(raw: str | None) -> Any:
    """A stored JSON field decoded, or its raw text when it is not JSON (None stays None)."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Depth of one queue, sampled from Redis."""

    queue: str
    ready: int
    delayed: int
    pending: int
    dead: int
    paused: bool = False  # ``stem queue pause``: no worker starts a job of it


@dataclass(frozen=True, slots=True)
class ReclaimedJob:
    """One job a reclaim took back (``requeued``) or dead-lettered for max-deliveries
    (``buried``), and the consumer that held it; task and consumer are "" when unknown."""

    job_id: str
    task: str
    consumer: str
    outcome: str


@dataclass(frozen=True, slots=True)
class ReclaimStats:
    """What one reclaim page did."""

    cursor: str
    requeued: int
    dead_lettered: int
    duplicates: int
    jobs: tuple[ReclaimedJob, ...] = ()


@dataclass(frozen=True, slots=True)
class Renewal:
    """What a lease renewal found about the deliveries the consumer no longer owns.

    ``taken``: pending under another consumer (claimed away: a lost lease). ``gone``:
    pending for no one, because a settle or hand-back acked it (maybe the consumer's
    own, still on its way back) or the reclaimer did (it acks an expired entry and adds
    the job again in one step). Only the caller knows which of those it was.
    """

    taken: tuple[Delivery, ...] = ()
    gone: tuple[Delivery, ...] = ()

    @property
    def not_owned(self) -> tuple[Delivery, ...]:
        """Every delivery that was not renewed."""
        return self.taken + self.gone


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


@dataclass(frozen=True, slots=True)
class ScheduleSnapshot:
    """The whole schedule store as read at once: entry name -> definition / run record."""

    definitions: dict[str, str]
    states: dict[str, str]


@dataclass
class DefinitionChange:
    """What a read-modify-write of the schedule definitions writes: ``puts``, ``deletes``.

    Deleting a definition also deletes its run record, and a new name starts without
    one (a record left behind by a removed entry is dropped). ``result`` is handed back to the
    caller of ``ScheduleStore.change_definitions`` untouched (e.g. what was refused).
    """

    puts: dict[str, str] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    result: Any = None
