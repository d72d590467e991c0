"""Every Redis key name stem uses is defined here; Lua derives some from the same rules.

Python builds every key from this module. The Lua scripts get the keys they declare in
``KEYS``, plus the queue's prefix (:attr:`QueueKeys.prefix`, ``ns:{queue}:``) in ``ARGV``,
from which they derive the per-job and per-priority keys of that queue by appending the
suffixes spelled here: :data:`LUA_DERIVED_SUFFIXES` (``job:<id>``, ``done:<id>``,
``idem:<key>``, ``p<priority>``, ``stats``, ``dead``). Derived keys share the prefix and so the
queue's hash-tag slot. ``tests/test_keys.py`` checks that every suffix a script appends
to the prefix is one of these, and that each matches its builder here.

All of a queue's keys share the hash tag ``{queue}`` so that a queue lives in one Redis
Cluster slot and its multi-key Lua scripts work on Cluster. Keys that are not about one
queue (the queue registry, worker heartbeats, the schedule store) are namespace-wide.
``docs/reference/redis-keys.md`` lists every key with its type and lifetime; keep the two
in step (``tests/test_keys.py`` checks that every builder here is documented there).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from stem.errors import ConfigError

#: Priority levels; each level that has been used gets its own ready stream.
PRIORITIES = range(10)
#: Highest priority first: the order in which a worker reads a queue's streams.
READ_ORDER = tuple(reversed(PRIORITIES))
#: The consumer group every worker of a queue joins.
GROUP = "workers"
#: ``Keys.queue`` keeps the keys of this many queue names (an app with more builds the
#: rest per call, as before).
MAX_CACHED_QUEUES = 512


class Suffix(enum.Enum):
    """What :attr:`QueueKeys.prefix` is followed by in a per-queue key (Lua: ``K``)."""

    JOB = "job:"
    DONE = "done:"
    IDEM = "idem:"
    STREAM = "p"
    STATS = "stats"
    DEAD = "dead"
    DELAYED = "delayed"
    LIMIT = "lim:"
    SLOTS = "slots:"
    WAIT = "wait:"
    WAITING = "limwait"
    HELD = "limheld"
    PAUSED = "paused"


#: The suffixes Lua appends to :attr:`QueueKeys.prefix` to derive a key, with the builder
#: here that makes the same key (``delayed`` is always passed in ``KEYS``).
LUA_DERIVED_SUFFIXES = {
    Suffix.JOB.value: "QueueKeys.job",
    Suffix.DONE.value: "QueueKeys.done",
    Suffix.IDEM.value: "QueueKeys.idempotency",
    Suffix.STREAM.value: "QueueKeys.stream",
    Suffix.STATS.value: "QueueKeys.stats",
    Suffix.DEAD.value: "QueueKeys.dead",
    Suffix.LIMIT.value: "QueueKeys.limit",
    Suffix.SLOTS.value: "QueueKeys.slots",
    Suffix.WAIT.value: "QueueKeys.wait",
    Suffix.WAITING.value: "QueueKeys.limit_waiting",
    Suffix.HELD.value: "QueueKeys.limit_held",
    Suffix.PAUSED.value: "QueueKeys.paused",
}


class JobField(enum.Enum):
    """Fields of the job record hash, :meth:`QueueKeys.job` (Lua: ``F``)."""

    ENV = "env"
    STATE = "state"
    ATTEMPT = "attempt"
    DELIVERIES = "deliveries"
    PRIO = "prio"
    ENQ_MS = "enq_ms"
    START_MS = "start_ms"
    END_MS = "end_ms"
    ETA_MS = "eta_ms"
    WORKER = "worker"
    RESULT = "result"
    ERROR = "error"
    REASON = "reason"
    REPLAYED = "replayed"
    LIMITS = "limits"  # the job's resolved limits, "<definition>=<instance key>,..."
    ADMITTED = "admitted"  # the limiter released it with its tokens and slots taken
    WAIT_SCORE = "wait_score"  # its place in a wait set (kept if it waits again)
    GRANTED_MS = "granted_ms"  # when the limiter last released it (server ms)
    TASK = "task"  # a settled record's task name (its envelope is gone)
    KEEP = "keep"  # seconds to keep the settled record (the task's keep_result_s), if set
    WAITED = "waited"  # a waiter registered (wait.lua): the settle pushes the done latch


class EntryField(enum.Enum):
    """Fields of stream entries: a ready stream's entry holds ``id`` only; a dead-letter
    entry holds them all (Lua: ``E``)."""

    ID = "id"
    REASON = "reason"
    ERROR = "error"
    ENV = "env"
    STATE = "state"
    TS = "ts"
    LIMITS = "limits"  # a dead-letter entry keeps the job's limits, so a replay keeps them
    KEEP = "keep"  # and its keep_result_s, if it has one


class StatsField(enum.Enum):
    """Counters in :attr:`QueueKeys.stats` (Lua: ``C``)."""

    DUPLICATES = "duplicates"
    RECLAIMED = "reclaimed"
    THROTTLED = "throttled"  # jobs a limit sent to a wait set at fetch
    RELEASED = "limit_released"  # jobs the limiter released from a wait set
    SLOTS_FREED = "slots_freed"  # concurrency slots taken back from dead holders
    WAIT_MS = "limit_wait_ms"  # total ms released jobs spent waiting
    WAITING = "limit_waiting"  # jobs in wait sets now (up at throttle, down at release)


_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


def check_name(kind: str, value: str) -> str:
    """Refuse names that would break key building (braces, spaces, empty)."""
    if not _NAME.match(value):
        raise ConfigError(
            f"invalid {kind} {value!r}: use 1-200 letters, digits, '_', '.', ':' or '-'"
        )
    return value


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue; every one carries the queue's hash tag."""

    namespace: str
    queue: str
    # Built once: a worker names the prefix and its streams in every fetch and settle.
    _prefix: str = field(init=False, repr=False, compare=False)
    _streams: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefix = f"{self.namespace}:{{{self.queue}}}:"
        object.__setattr__(self, "_prefix", prefix)
        streams = {p: f"{prefix}{Suffix.STREAM.value}{p}" for p in READ_ORDER}
        object.__setattr__(self, "_streams", streams)

    @property
    def prefix(self) -> str:
        """``ns:{queue}:``, the start of every key of this queue (Lua derives job keys)."""
        return self._prefix

    def stream(self, priority: int) -> str:
        """Ready stream for one priority level (entries hold only a job id)."""
        name = self._streams.get(priority)
        return f"{self._prefix}{Suffix.STREAM.value}{priority}" if name is None else name

    def streams(self) -> list[str]:
        """All ready streams in read order, highest priority first."""
        return list(self._streams.values())

    @property
    def delayed(self) -> str:
        """Sorted set: job id scored by the epoch ms at which it becomes ready."""
        return f"{self.prefix}{Suffix.DELAYED.value}"

    @property
    def dead(self) -> str:
        """Dead-letter stream: one entry per buried job, with reason and payload."""
        return f"{self.prefix}{Suffix.DEAD.value}"

    @property
    def stats(self) -> str:
        """Hash of counters (duplicates skipped, reclaimed, dead-lettered, ...)."""
        return f"{self.prefix}{Suffix.STATS.value}"

    def job(self, job_id: str) -> str:
        """Hash: the job record (envelope, state, attempt, result or error)."""
        return f"{self.prefix}{Suffix.JOB.value}{job_id}"

    def done(self, job_id: str) -> str:
        """List used as a latch: pushed once when the job settles if a waiter registered
        (the record's ``waited`` field), waiters BLMOVE on it; kept a minute."""
        return f"{self.prefix}{Suffix.DONE.value}{job_id}"

    def idempotency(self, key: str) -> str:
        """String: the job id first enqueued under an idempotency key, with a TTL."""
        return f"{self.prefix}{Suffix.IDEM.value}{key}"

    def limit(self, instance: str) -> str:
        """Hash: one limit instance's rate state (``tat``, the GCRA's theoretical arrival
        time, and the window guard ``r0``.. ``i`` ``n``: see lua/lib.lua); expires when idle."""
        return f"{self.prefix}{Suffix.LIMIT.value}{instance}"

    def slots(self, instance: str) -> str:
        """Hash: one limit instance's held concurrency slots, job id -> ``<prio>|<entry id>``."""
        return f"{self.prefix}{Suffix.SLOTS.value}{instance}"

    def wait(self, instance: str) -> str:
        """Sorted set: throttled job ids waiting for one limit instance, FIFO by score."""
        return f"{self.prefix}{Suffix.WAIT.value}{instance}"

    @property
    def limit_waiting(self) -> str:
        """Sorted set: limit instances with waiting jobs, scored by when last served
        (the limiter serves them round-robin, least recently served first)."""
        return f"{self.prefix}{Suffix.WAITING.value}"

    @property
    def paused(self) -> str:
        """String: present while the queue is paused (``stem queue pause``); the fetch
        script reads it first and delivers nothing while it exists."""
        return f"{self.prefix}{Suffix.PAUSED.value}"

    @property
    def limit_held(self) -> str:
        """Set: limit instances that have concurrency slots held (the limiter sweeps them)."""
        return f"{self.prefix}{Suffix.HELD.value}"


@dataclass(frozen=True)
class Keys:
    """Namespace-wide keys, and a factory for per-queue keys."""

    namespace: str = "stem"
    # The queues' keys, made once per name (a few hundred names at most are kept).
    _queues: dict[str, QueueKeys] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        check_name("namespace", self.namespace)

    def queue(self, name: str) -> QueueKeys:
        """Keys of queue ``name`` (``ConfigError`` for a name that would break a key)."""
        keys = self._queues.get(name)
        if keys is None:
            keys = QueueKeys(self.namespace, check_name("queue name", name))
            if len(self._queues) < MAX_CACHED_QUEUES:
                self._queues[name] = keys
        return keys

    @property
    def queues(self) -> str:
        """Set of every queue name ever used in this namespace."""
        return f"{self.namespace}:queues"

    @property
    def workers(self) -> str:
        """Sorted set: worker id scored by its last heartbeat (epoch ms)."""
        return f"{self.namespace}:workers"

    def worker(self, worker_id: str) -> str:
        """Hash: one worker's heartbeat record; expires when the worker stops beating."""
        return f"{self.namespace}:worker:{worker_id}"

    def worker_control(self, worker_id: str) -> str:
        """List: commands for one worker (``stop``, ``ping:<nonce>``), pushed by
        ``stem worker stop|ping``; the worker pops them with each heartbeat."""
        return f"{self.namespace}:worker:{worker_id}:control"

    @property
    def schedule(self) -> str:
        """Hash: beat entry name -> entry definition (JSON)."""
        return f"{self.namespace}:schedule"

    @property
    def schedule_state(self) -> str:
        """Hash: beat entry name -> last run (tick, job id, drift) as JSON."""
        return f"{self.namespace}:schedule:state"

    def actors(self, kind: str) -> str:
        """Sorted set: id of each reclaimer, beat or rate limiter (``kind``) scored by its
        last heartbeat (epoch ms); workers have their own (:attr:`workers`)."""
        return f"{self.namespace}:actors:{check_name('actor kind', kind)}"

    def actor(self, kind: str, actor_id: str) -> str:
        """String: one such actor's heartbeat record (JSON); expires when it stops beating."""
        return f"{self.namespace}:actor:{kind}:{actor_id}"

    @property
    def limits(self) -> str:
        """Hash: limit name -> definition JSON set at run time (``stem limit set``); it
        overrides the definition in code. Workers and the limiter re-read it every second."""
        return f"{self.namespace}:limits"
