"""Operator-facing broker operations: queue depths, worker heartbeats, consumers and the
dead-letter queue. Mixed into ``RedisBroker``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from stem.broker.base import DeadEntry, QueueStats
from stem.broker.connection import Faults, mapped, raise_cluster_errors
from stem.broker.keys import GROUP, EntryField, JobField, Keys, QueueKeys
from stem.broker.scripts import Scripts
from stem.broker.values import integer, json_object, text
from stem.states import JobState

_PAGE = 500
#: Commands a worker takes with one heartbeat (more wait for the next one).
_MAX_COMMANDS = 100
_ID = EntryField.ID.value.encode()
_ENV = EntryField.ENV.value.encode()
#: Where a job whose record is in this state waits, for :meth:`AdminMixin.count_envelopes`.
_WHERE = {
    JobState.QUEUED.value: "ready",
    JobState.STARTED.value: "pending",
    JobState.SCHEDULED.value: "delayed",
    JobState.RETRYING.value: "delayed",
}


def _text(value: Any) -> str:
    return text(value) or ""


def _last_delivered(info: Any) -> str:
    if isinstance(info, list):
        for group in info:
            if isinstance(group, dict) and _text(group.get("name")) == GROUP:
                return _text(group.get("last-delivered-id"))
    return ""


def _entry_ms(entry_id: Any) -> int:
    return int(_text(entry_id).partition("-")[0] or 0)


class AdminMixin:
    """Inspection and dead-letter operations (needs ``client``, ``keys``, ``scripts``)."""

    url: str
    faults: Faults
    client: Any  # redis.Redis; its replies are untyped, so this is the Any boundary
    keys: Keys
    scripts: Scripts

    @mapped
    def queues(self) -> list[str]:
        """Every queue ever used in this namespace, sorted."""
        return sorted(_text(q) for q in self.client.smembers(self.keys.queues))

    @mapped
    def queue_stats(self, queue: str) -> QueueStats:
        """Ready, delayed, pending (held by workers) and dead counts of ``queue``, and
        whether it is paused.

        Ready is stream length minus pending: settled entries are deleted from the
        stream, so what remains is either waiting or held.
        """
        qk = self.keys.queue(queue)
        with self.client.pipeline(transaction=False) as pipe:
            for stream in qk.streams():
                pipe.xlen(stream)
                pipe.xpending(stream, GROUP)
            pipe.zcard(qk.delayed)
            pipe.xlen(qk.dead)
            pipe.exists(qk.paused)
            replies = raise_cluster_errors(pipe.execute(raise_on_error=False))
        length = pending = 0
        for i in range(0, 20, 2):
            length += replies[i] if isinstance(replies[i], int) else 0
            summary = replies[i + 1]
            if isinstance(summary, dict):
                pending += int(summary.get("pending", 0))
        paused = replies[22] == 1
        return QueueStats(
            queue, length - pending, int(replies[20]), pending, int(replies[21]), paused
        )

    @mapped
    def oldest_ready_age_ms(self, queue: str) -> int | None:
        """How long the oldest job that waits for a worker in ``queue`` has waited (ms, by
        Redis's clock), or None when none waits.

        The first entry after the group's last-delivered id in each priority stream is
        the oldest never delivered one; its id's time is when it became ready (enqueued,
        promoted from the delayed set, or handed back).
        """
        streams = self.keys.queue(queue).streams()
        with self.client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xinfo_groups(stream)
            groups = raise_cluster_errors(pipe.execute(raise_on_error=False))
        with self.client.pipeline(transaction=False) as pipe:
            for stream, info in zip(streams, groups, strict=True):
                last = _last_delivered(info)
                pipe.xrange(stream, min=f"({last}" if last else "-", max="+", count=1)
            pipe.time()
            replies = raise_cluster_errors(pipe.execute(raise_on_error=False))
            *firsts, (now_s, now_us) = replies
        born = [_entry_ms(f[0][0]) for f in firsts if isinstance(f, list) and f]
        if not born:
            return None
        return max(0, int(now_s) * 1000 + int(now_us) // 1000 - min(born))

    @mapped
    def expired_leases(self, queue: str, lease_ms: int, limit: int = 1000) -> int:
        """How many held jobs of ``queue`` went ``lease_ms`` without a lease renewal (their
        worker died or hung; a reclaimer takes them back), at most ``limit`` per stream.

        Live workers renew every lease a quarter-lease, which resets an entry's idle time,
        so only jobs of dead or stuck workers count.
        """
        streams = self.keys.queue(queue).streams()
        with self.client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xpending_range(stream, GROUP, "-", "+", limit, idle=lease_ms)
            replies = raise_cluster_errors(pipe.execute(raise_on_error=False))
        return sum(len(r) for r in replies if isinstance(r, list))

    @mapped
    def queue_counters(self, queue: str) -> dict[str, int]:
        """The lifetime counters of ``queue`` (``StatsField`` names: ``reclaimed``, ...)."""
        raw = self.client.hgetall(self.keys.queue(queue).stats)
        return {_text(k): integer(v) or 0 for k, v in raw.items()}

    # -- workers ------------------------------------------------------------------------

    @mapped
    def heartbeat(self, worker_id: str, record: dict[str, Any], ttl_s: float) -> list[str]:
        """Store one worker's heartbeat record (it disappears ``ttl_s`` after the last one)
        and take the commands sent to the worker since the last beat, oldest first (see
        ``stem worker stop|ping``), in the same round trip."""
        now_ms = time.time_ns() // 1_000_000
        key = self.keys.worker(worker_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(key, json.dumps({**record, "ts_ms": now_ms}), px=int(ttl_s * 1000))
            pipe.zadd(self.keys.workers, {worker_id: now_ms})
            pipe.lpop(self.keys.worker_control(worker_id), _MAX_COMMANDS)
            replies = pipe.execute(raise_on_error=False)
        commands = replies[2] if isinstance(replies[2], list) else []
        return [_text(c) for c in commands]

    @mapped
    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker's heartbeat (on clean shutdown)."""
        self.client.delete(self.keys.worker(worker_id))
        self.client.zrem(self.keys.workers, worker_id)

    @mapped
    def workers(self) -> list[dict[str, Any]]:
        """Heartbeat records of live workers; prunes those whose record expired."""
        return self._live_records(self.keys.workers, self.keys.worker)

    # -- other actors (reclaimer, beat, rate limiter) ------------------------------------

    @mapped
    def actor_heartbeat(
        self, kind: str, actor_id: str, record: dict[str, Any], ttl_s: float
    ) -> None:
        """Store the heartbeat record of a reclaimer, beat or rate limiter (``kind``); it
        disappears ``ttl_s`` after the last one, so a missing actor shows as missing."""
        now_ms = time.time_ns() // 1_000_000
        doc = {**record, "id": actor_id, "kind": kind, "ts_ms": now_ms}
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.actor(kind, actor_id), json.dumps(doc), px=int(ttl_s * 1000))
            pipe.zadd(self.keys.actors(kind), {actor_id: now_ms})
            pipe.execute()

    @mapped
    def forget_actor(self, kind: str, actor_id: str) -> None:
        """Remove an actor's heartbeat (on clean shutdown)."""
        self.client.delete(self.keys.actor(kind, actor_id))
        self.client.zrem(self.keys.actors(kind), actor_id)

    @mapped
    def actors(self, kind: str) -> list[dict[str, Any]]:
        """Heartbeat records of the live actors of ``kind``; prunes expired ones."""
        return self._live_records(self.keys.actors(kind), lambda a: self.keys.actor(kind, a))

    def _live_records(self, index: str, key_of: Callable[[str], str]) -> list[dict[str, Any]]:
        ids = [_text(w) for w in self.client.zrange(index, 0, -1)]
        if not ids:
            return []
        # One GET per record in one pipeline, not MGET: on a cluster each record's key is
        # in its own slot, and a cluster pipeline sends each GET to its node.
        with self.client.pipeline(transaction=False) as pipe:
            for w in ids:
                pipe.get(key_of(w))
            raw = pipe.execute()
        gone = [w for w, r in zip(ids, raw, strict=True) if r is None]
        if gone:
            self.client.zrem(index, *gone)
        # A record that is not a JSON object (someone else wrote it) is skipped, not fatal.
        return [doc for r in raw if r is not None and (doc := json_object(r)) is not None]

    # -- consumers -----------------------------------------------------------------------

    @mapped
    def forget_consumer(self, queue: str, consumer: str) -> int:
        """Delete ``consumer`` from ``queue``'s consumer groups where it holds nothing.

        For a worker or reclaimer that stops: where it still holds entries it stays, so
        a restart under the same name (or the reclaimer) finds them. Returns how many
        streams it was deleted from.
        """
        qk = self.keys.queue(queue)
        return int(self.scripts.prune(keys=qk.streams(), args=[GROUP, 0, consumer]))

    @mapped
    def prune_consumers(self, queue: str, min_idle_ms: int) -> int:
        """Delete every consumer of ``queue`` that holds nothing and has not read or
        claimed anything for ``min_idle_ms`` (what crashed or SIGKILLed actors leave).
        A consumer with pending entries is never deleted. Returns how many were."""
        qk = self.keys.queue(queue)
        return int(self.scripts.prune(keys=qk.streams(), args=[GROUP, min_idle_ms]))

    # -- dead-letter queue --------------------------------------------------------------

    @mapped
    def dead_entries(self, queue: str, count: int = 50, before: str = "+") -> list[DeadEntry]:
        """Newest-first DLQ entries of ``queue`` (up to ``count``, ids up to ``before``)."""
        raw = self.client.xrevrange(self.keys.queue(queue).dead, before, "-", count=count)
        return [_dead_entry(eid, fields) for eid, fields in raw]

    @mapped
    def dead_entry(self, queue: str, entry_or_job_id: str) -> DeadEntry | None:
        """One DLQ entry, by its entry id or by the job id it holds."""
        dead = self.keys.queue(queue).dead
        if "-" in entry_or_job_id and entry_or_job_id.split("-", maxsplit=1)[0].isdigit():
            got = self.client.xrange(dead, entry_or_job_id, entry_or_job_id)
            return _dead_entry(*got[0]) if got else None
        for eid, fields in self.client.xrevrange(dead, "+", "-"):
            if _text(fields.get(b"id", b"")) == entry_or_job_id:
                return _dead_entry(eid, fields)
        return None

    @mapped
    def replay(
        self, queue: str, entry_ids: Sequence[str], envelopes: Mapping[str, str] | None = None
    ) -> list[str]:
        """Put DLQ entries back on their ready streams with their job ids; return those.

        ``envelopes`` (entry id -> envelope) replaces the kept envelope of those entries:
        how an operator's re-signed copy goes back (``stem dlq replay --resign``).
        """
        qk = self.keys.queue(queue)
        given = envelopes or {}
        args = [f"{e}\n{given[e]}" if e in given else e for e in entry_ids]
        out = self.scripts.replay(keys=[qk.dead], args=[qk.prefix, GROUP, *args])
        return [_text(j) for j in out]

    @mapped
    def count_envelopes(
        self, queue: str, label: Callable[[bytes], str]
    ) -> dict[tuple[str, str], int]:
        """How many stored envelopes of ``queue`` there are per (where, ``label(envelope)``).

        ``where`` is ``ready``, ``pending`` (held by a worker), ``delayed`` (delays and
        retries) or ``dead`` (the DLQ entry's copy). Read page by page, so memory stays
        bounded; a record stem cannot read is skipped. The broker does not read the
        envelopes: ``label`` does (e.g. the key id they are signed with).
        """
        qk = self.keys.queue(queue)
        counts: Counter[tuple[str, str]] = Counter()
        for stream in qk.streams():
            for page in self._pages(stream):
                self._tally(qk, [fields.get(_ID) for _, fields in page], label, counts)
        for start in itertools.count(0, _PAGE):
            ids = self.client.zrange(qk.delayed, start, start + _PAGE - 1)
            self._tally(qk, ids, label, counts)
            if len(ids) < _PAGE:
                break
        for page in self._pages(qk.dead):
            for _, fields in page:
                if fields.get(_ENV):
                    counts["dead", label(fields[_ENV])] += 1
        return dict(counts)

    def _pages(self, stream: str) -> Iterator[list[Any]]:
        start = "-"
        while True:
            page = self.client.xrange(stream, min=start, max="+", count=_PAGE)
            yield page
            if len(page) < _PAGE:
                return
            start = "(" + _text(page[-1][0])

    def _tally(
        self,
        qk: QueueKeys,
        job_ids: Sequence[Any],
        label: Callable[[bytes], str],
        counts: Counter[tuple[str, str]],
    ) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for jid in job_ids:
                pipe.hmget(qk.job(_text(jid)), JobField.ENV.value, JobField.STATE.value)
            replies = pipe.execute(raise_on_error=False) if job_ids else []
        for reply in replies:
            if isinstance(reply, list) and reply[0] is not None:
                where = _WHERE.get(_text(reply[1]))
                if where is not None:
                    counts[where, label(reply[0])] += 1

    @mapped
    def purge_dead(self, queue: str) -> int:
        """Delete every DLQ entry of ``queue``; return how many there were."""
        dead = self.keys.queue(queue).dead
        n = int(self.client.xlen(dead))
        self.client.delete(dead)
        return n


def _dead_entry(eid: bytes, fields: dict[bytes, bytes]) -> DeadEntry:
    def get(name: str) -> str:
        return _text(fields.get(name.encode(), b""))

    return DeadEntry(
        entry_id=eid.decode(),
        job_id=get("id"),
        reason=get("reason"),
        error=get("error"),
        envelope=get("env"),
        state=get("state"),
        ts_ms=integer(get("ts")) or 0,
    )
