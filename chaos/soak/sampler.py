"""What the soak measures every few seconds: jobs settled and their latency, each actor's
memory, Redis's memory and key count, the queue's depths.

- :class:`JobTracker` follows every job the producer was told was accepted (and every
  one written despite an error) on the direct connection until its record is terminal,
  taking ``end_ms - enq_ms`` (both Redis's clock) as its latency. It must see each job
  settle before the record expires (the soak's ``result_ttl_s``), which sampling every
  few seconds does by a wide margin.
- :class:`ActorMemory` finds the supervisor's actors by their command (``worker``,
  ``reclaim``, ``beat``) and gives the workers stable slots (``worker1``, ``worker2``) that
  a restarted replica takes over. An actor's RSS is its whole process tree's.

Reads that fail (Redis is down for a moment during a restart) leave that sample's
Redis columns empty; they never stop the soak.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import psutil
import redis

from chaos.stack import Actor, Sent, Stack
from stem.errors import OutsideError, StemError
from stem.states import TERMINAL_STATES, JobState

WORKER_SLOTS = ("worker1", "worker2")
#: Actors whose RSS is a column, in column order.
ACTORS = ("supervisor", *WORKER_SLOTS, "reclaimer", "beat")
_ROLE_BY_TOKEN = {"worker": "worker", "reclaim": "reclaimer", "beat": "beat"}
_MB = 1024 * 1024


@dataclass
class JobTracker:
    """Every accepted job, followed until it settles; latencies of those that did."""

    stack: Stack
    outstanding: dict[str, None] = field(default_factory=dict)  # ordered set of ids
    states: dict[str, JobState | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    refused: int = 0
    written_despite_error: int = 0
    _seen: int = 0

    def take(self, sent: list[Sent]) -> None:
        """Start following what the producer sent since the last call."""
        for s in sent[self._seen :]:
            self._seen += 1
            if s.error is None:
                self._follow(s.job_id)
                continue
            self.refused += 1
            text = str(s.error)
            if not isinstance(s.error, OutsideError) or "\n" in text or not text:
                self.problems.append(f"enqueue raised {type(s.error).__name__}: {text[:200]}")
            if self._exists(s.job_id):
                self.written_despite_error += 1
                self._follow(s.job_id)

    def _follow(self, job_id: str) -> None:
        self.outstanding[job_id] = None
        self.states[job_id] = None

    def _exists(self, job_id: str) -> bool:
        # Asked right after the error: a job written despite it has a record by now. If
        # Redis is down this instant, the job counts as refused (it cannot be checked).
        with contextlib.suppress(redis.RedisError, StemError):
            return self.stack.direct.broker.job("default", job_id) is not None
        return False

    def poll(self) -> list[float]:
        """Read every outstanding record; the latencies (ms) of those that settled now.

        Stops early (the rest waits for the next poll) if Redis cannot be reached.
        """
        broker = self.stack.direct.broker
        latencies: list[float] = []
        for jid in list(self.outstanding):
            try:
                record = broker.job("default", jid)
            except (redis.RedisError, StemError, OSError):
                return latencies
            if record is None or record.state not in TERMINAL_STATES:
                continue
            self.states[jid] = record.state
            del self.outstanding[jid]
            if record.enq_ms is not None and record.end_ms is not None:
                latencies.append(float(record.end_ms - record.enq_ms))
        return latencies


@dataclass
class ActorMemory:
    """RSS (MB) of each actor of one ``stem supervise``; workers keep their slot."""

    supervisor: Actor
    slots: dict[str, int] = field(default_factory=dict)  # slot -> pid

    def processes(self) -> dict[str, psutil.Process]:
        """The live actors by column name (missing while one is being restarted)."""
        found: dict[str, psutil.Process] = {}
        workers = []
        with contextlib.suppress(psutil.Error):
            found["supervisor"] = psutil.Process(self.supervisor.pid)
        for child in self.supervisor.children():
            role = _role(child)
            if role == "worker":
                workers.append(child)
            elif role is not None and child.ppid() == self.supervisor.pid:
                found[role] = child
        found.update(self._assign(workers))
        return found

    def workers(self) -> list[psutil.Process]:
        return [p for name, p in self.processes().items() if name in WORKER_SLOTS]

    def _assign(self, workers: list[psutil.Process]) -> dict[str, psutil.Process]:
        by_pid = {p.pid: p for p in workers}
        self.slots = {s: pid for s, pid in self.slots.items() if pid in by_pid}
        for pid in sorted(by_pid):
            if pid not in self.slots.values():
                free = [s for s in WORKER_SLOTS if s not in self.slots]
                if free:
                    self.slots[free[0]] = pid
        return {s: by_pid[pid] for s, pid in self.slots.items()}

    def rss_mb(self) -> dict[str, tuple[int, float]]:
        """Column name -> (pid, RSS of its process tree in MB); the supervisor alone."""
        out = {}
        for name, proc in self.processes().items():
            with contextlib.suppress(psutil.Error):
                tree = [proc] if name == "supervisor" else [proc, *proc.children(recursive=True)]
                out[name] = (proc.pid, sum(_rss(p) for p in tree) / _MB)
        return out


def _role(proc: psutil.Process) -> str | None:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return None
    for token, role in _ROLE_BY_TOKEN.items():
        if token in cmd:
            return role
    return None


def _rss(proc: psutil.Process) -> int:
    with contextlib.suppress(psutil.Error):
        return int(proc.memory_info().rss)
    return 0


@dataclass(frozen=True)
class RedisFigures:
    """Redis's ``used_memory`` (MB) and ``DBSIZE``, and the queue's depths."""

    used_memory_mb: float
    keys: int
    ready: int
    pending: int
    delayed: int
    dead: int


def redis_figures(stack: Stack) -> RedisFigures | None:
    """Read on the direct connection; None while Redis cannot be reached."""
    try:
        client = stack.redis.client()
        used = int(client.info("memory")["used_memory"])
        keys = int(client.dbsize())
        stats = stack.direct.broker.queue_stats("default")
    except (redis.RedisError, StemError, OSError):
        return None
    return RedisFigures(used / _MB, keys, stats.ready, stats.pending, stats.delayed, stats.dead)
