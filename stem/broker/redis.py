"""``RedisBroker``: queues on Redis Streams, delayed jobs in sorted sets, atomic Lua settles.

Per queue (all keys share the queue's hash tag, see ``keys.py``): one ready stream per
priority level with one consumer group, a delayed sorted set, a dead-letter stream, and a
record hash per job that doubles as the result backend. Stream entries carry only the job
id; the envelope lives in the record, so retries, reclaims and replays never copy it.

Every method blocks; actors call them from ``trio.to_thread.run_sync``. The client is a
thread-safe connection pool; blocking reads (``wait_ready``, ``wait_done``) hold one
connection each for their duration. Connection failures raise ``BrokerUnavailable``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from stem.broker.admin import AdminMixin
from stem.broker.base import (
    MAX_DELAY_S,
    RESULT_TTL_S,
    Delivery,
    JobRecord,
    LimitSpec,
    ReclaimedJob,
    ReclaimStats,
    Renewal,
)
from stem.broker.connection import (
    Client,
    Faults,
    disconnect,
    is_cluster,
    mapped,
    open_client,
)
from stem.broker.consume import ConsumeMixin
from stem.broker.control import ControlMixin
from stem.broker.held import HeldConnection, ScriptCall, evalsha_command
from stem.broker.keys import GROUP, READ_ORDER, Keys
from stem.broker.limits import LimitsMixin
from stem.broker.produce import ProducerMixin
from stem.broker.schedule import RedisScheduleStore
from stem.broker.scripts import ScriptBatch, Scripts
from stem.broker.values import integer as _int
from stem.broker.values import job_state as _state
from stem.broker.values import text as _s
from stem.broker.values import utf8 as _utf8
from stem.broker.wait import RedisPendingFetch
from stem.states import TERMINAL_STATES, JobState

#: The longest wait ``promote_due`` reports (a score beyond it was not written by stem).
MAX_DELAY_MS = MAX_DELAY_S * 1000


class RedisBroker(ProducerMixin, ConsumeMixin, AdminMixin, LimitsMixin, ControlMixin):
    """The Redis Streams broker and result backend.

    ``result_ttl_s`` is how long a settled job's record (result or error) is kept, unless
    the job carries its own (``keep_result_s``);
    ``dlq_maxlen`` and ``dlq_retention_s`` bound the dead-letter stream (whichever is
    reached first trims it). With ``enqueue_replicas``, ``enqueue`` returns only once that
    many replicas confirmed the jobs (``WAIT``, up to ``enqueue_wait_ms``), and raises
    ``EnqueueNotReplicated`` when fewer did. ``close()`` releases the connection pool.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "stem",
        result_ttl_s: int = RESULT_TTL_S,
        dlq_maxlen: int = 100_000,
        dlq_retention_s: int = 14 * 86_400,
        client: Client | None = None,
        enqueue_replicas: int = 0,
        enqueue_wait_ms: int = 1000,
    ) -> None:
        self.url = url
        self.faults = Faults(url)
        self.keys = Keys(namespace)
        # redis-py's replies are untyped: this attribute is the Any boundary of the broker.
        self.client: Any = client if client is not None else open_client(url)
        self.scripts = Scripts(self.client)
        self.result_ttl_s = result_ttl_s
        self.dlq_maxlen = dlq_maxlen
        self.dlq_retention_ms = dlq_retention_s * 1000
        self.enqueue_replicas = enqueue_replicas
        self.enqueue_wait_ms = enqueue_wait_ms
        self._registered: set[str] = set()
        # Single enqueues reuse one connection (a cluster client routes by slot itself).
        self._held = None
        if isinstance(self.client, redis.Redis):
            self._held = HeldConnection(self.client)
        self._enqueue_calls: dict[str, ScriptCall] = {}
        self._positions: dict[str, dict[str, bytes]] = {}
        self._waiting: set[int] = set()  # client ids of the connections of pending fetches
        self._waiting_lock = threading.Lock()
        self._unblockable = True  # False once the ACL refused CLIENT ID or CLIENT UNBLOCK
        self._unblocker: Any = None  # a quick-timeout client for interrupt_waits

    def close(self) -> None:
        """Disconnect every pooled connection."""
        if self._held is not None:
            self._held.close()
        if self._unblocker is not None:
            self._unblocker.close()
        self.client.close()

    @mapped
    def ping(self) -> None:
        """Round-trip to Redis; raises ``BrokerUnavailable`` when it is unreachable."""
        self.client.ping()

    # -- consuming -----------------------------------------------------------------------

    @mapped
    def wait_ready(self, queues: Sequence[str], timeout_ms: int) -> bool:
        """Block until a new entry lands on one of ``queues`` (or the timeout passes).

        Reads nothing into any consumer group: it only wakes the caller, who then calls
        ``fetch`` (which keeps the bound on held jobs exact). Positions come from the last
        empty ``fetch`` of each queue, advanced by a later one that drained it.
        """
        per_queue: list[dict[str, bytes]] = []
        for queue in queues:
            known = self._positions.get(queue)
            if known is None:
                return True  # never fetched empty: fetch first
            per_queue.append(known)
        if is_cluster(self.client) and len(per_queue) > 1:
            return self._wait_each_queue(per_queue, timeout_ms)
        streams = {stream: pos for known in per_queue for stream, pos in known.items()}
        reply = self.client.xread(streams, count=1, block=max(1, timeout_ms))
        return bool(reply)

    @mapped
    def wait_and_fetch(
        self,
        queue: str,
        consumer: str,
        count: int,
        limits: Sequence[LimitSpec] = (),
        timeout_ms: int = 1000,
    ) -> list[Delivery] | None:
        """``wait_ready`` on ``queue`` and then ``fetch``, in one round trip.

        ``XREAD BLOCK`` and the fetch script go out pipelined on one connection: Redis
        runs the fetch as soon as the read returns (an entry landed, the timeout passed,
        or :meth:`interrupt_waits`), with no reply to the client and request back in
        between. The fetch is what :meth:`fetch` does, so ``count`` (the caller's free
        capacity, counted before the wait) bounds what it delivers. ``None`` when this
        cannot be one call (see :meth:`begin_wait_and_fetch`); the caller then waits and
        fetches in two calls. The blocking form of :meth:`begin_wait_and_fetch`.
        """
        pending = self.begin_wait_and_fetch(queue, consumer, count, limits, timeout_ms)
        if pending is None:
            return None
        try:
            pending.wait()
        except BaseException:
            pending.abandon()
            raise
        got = pending.result()
        if got is None:  # Redis had lost the script: this call loads it, then fetches
            got = self.fetch(queue, consumer, count, limits)
        return got

    @mapped
    def begin_wait_and_fetch(
        self,
        queue: str,
        consumer: str,
        count: int,
        limits: Sequence[LimitSpec] = (),
        timeout_ms: int = 1000,
        send_if: Callable[[], bool] | None = None,
    ) -> RedisPendingFetch | None:
        """Send :meth:`wait_and_fetch`'s commands and return without waiting for a reply:
        the caller polls the :class:`RedisPendingFetch` (stem/broker/wait.py) from its own
        thread, a worker's trio thread included. May block only to (re)connect;
        ``send_if``, asked once the connection is ready, can then still send nothing
        (a worker stopped meanwhile).

        ``None`` when this cannot be one call: no empty fetch of ``queue`` yet (nothing to
        wait from), or a Redis Cluster (whose pipelines refuse ``EVALSHA``); or when
        ``send_if`` said no.
        """
        known = self._positions.get(queue)
        if known is None or not isinstance(self.client, redis.Redis):
            return None
        pool = self.client.connection_pool
        self._register(queue)
        keys, args = self._fetch_call(queue, consumer, count, limits, 0)
        read = ("XREAD", "COUNT", 1, "BLOCK", max(1, timeout_ms), "STREAMS", *known)
        read += tuple(known.values())
        fetch = evalsha_command(self.scripts.fetch, keys, args)
        conn: Any = pool.get_connection()  # redis-py's Connection is untyped
        if send_if is not None and not send_if():
            pool.release(conn)
            return None
        try:
            # CLIENT ID rides in front, so its reply arrives before the read blocks and
            # names this connection as it is now (a reconnect gets a new id).
            conn.send_packed_command(conn.pack_commands([("CLIENT", "ID"), read, fetch]))
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise

        def refused_id() -> None:
            self._unblockable = False

        return RedisPendingFetch(
            conn,
            pool=pool,
            faults=self.faults,
            read_timeout_ms=timeout_ms,
            waiting=self._waiting,
            waiting_lock=self._waiting_lock,
            on_refused_id=refused_id,
            finish=lambda reply: self._fetched(queue, count, reply),
        )

    def interrupt_waits(self) -> None:
        """End every pending fetch's blocked read (``CLIENT UNBLOCK``; see
        :meth:`begin_wait_and_fetch`), so its fetch runs now: a stopping worker does not
        wait out the block to hand back.
        Best effort and quick: it gives up on a Redis that does not answer in 0.5 s."""
        with self._waiting_lock:
            waiting = list(self._waiting)
        if not waiting or not self._unblockable:
            return
        with self._waiting_lock:  # a stop's gate and a stopped wait's thread may both call
            if self._unblocker is None:  # its own connection: the pool's may all be busy
                self._unblocker = open_client(self.url, max_connections=1, deadline_s=0.5)
        for client_id in waiting:
            try:
                self._unblocker.client_unblock(client_id)
            except redis.ResponseError:  # an ACL without client|unblock
                self._unblockable = False
                return
            except redis.RedisError:
                return  # Redis is out of reach: the blocked read fails on its own

    def _wait_each_queue(self, per_queue: list[dict[str, bytes]], timeout_ms: int) -> bool:
        """``wait_ready`` on a cluster: one ``XREAD`` cannot span hash slots, and each
        queue is its own slot. One look at every queue without blocking, then a slice of
        the wait on each in turn, so an entry on another queue waits at most one slice
        (``timeout_ms / len(queues)``) longer than on a single Redis."""
        if any(self.client.xread(streams, count=1) for streams in per_queue):
            return True
        slice_ms = max(1, timeout_ms // len(per_queue))
        return any(self.client.xread(s, count=1, block=slice_ms) for s in per_queue)

    @mapped
    def renew(self, consumer: str, deliveries: Sequence[Delivery]) -> Renewal:
        """Renew the lease of every one of ``deliveries`` that ``consumer`` still holds.

        One script call per queue (its streams share one hash slot). The reply lists the
        deliveries that were not renewed because ``consumer`` no longer owns them (see
        :class:`Renewal`). On a cluster, a queue whose master fails (over) does not stop
        the renewal of the queues on other masters: the first failure is raised after
        them, and the caller's retry renews all again.
        """
        taken: list[Delivery] = []
        gone: list[Delivery] = []
        by_queue: dict[str, list[Delivery]] = defaultdict(list)
        for d in deliveries:
            by_queue[d.queue].append(d)
        failed: Exception | None = None
        for queue, held in by_queue.items():
            try:
                t, g = self._renew_queue(queue, consumer, held)
            except (redis.RedisError, RedisClusterException) as exc:
                if not is_cluster(self.client):
                    raise  # one server: the other queues would fail the same way
                failed = failed or exc
                continue
            taken += t
            gone += g
        if failed is not None:
            raise failed
        return Renewal(tuple(taken), tuple(gone))

    def _renew_queue(
        self, queue: str, consumer: str, held: Sequence[Delivery]
    ) -> tuple[list[Delivery], list[Delivery]]:
        qk = self.keys.queue(queue)
        by_priority: dict[int, list[str]] = defaultdict(list)
        by_entry: dict[str, list[Delivery]] = defaultdict(list)
        for d in held:
            by_priority[d.priority].append(d.entry_id)
            by_entry[d.entry_id].append(d)
        keys: list[str] = []
        args: list[Any] = [GROUP, consumer]
        for priority, entry_ids in by_priority.items():
            keys.append(qk.stream(priority))
            args += [len(entry_ids), *entry_ids]
        taken, gone = self.scripts.renew(keys=keys, args=args, client=self.client)
        # The script answers with entry ids; an id is unique within one stream, so a
        # (rare) id shared by two priorities' streams names both deliveries.
        return (
            [d for e in taken for d in by_entry[e.decode()]],
            [d for e in gone for d in by_entry[e.decode()]],
        )

    def with_deadline(self, deadline_s: float) -> RedisBroker:
        """A broker on its own connection whose every call fails within ``deadline_s``.

        For lease renewals: they must neither queue behind a blocked read on the shared
        pool nor wait out the 30 s socket timeout on a half-open connection. ``close()``
        it when done; :meth:`drop_connections` after a failed call.
        """
        return RedisBroker(
            self.url,
            namespace=self.keys.namespace,
            result_ttl_s=self.result_ttl_s,
            dlq_maxlen=self.dlq_maxlen,
            dlq_retention_s=self.dlq_retention_ms // 1000,
            client=open_client(self.url, max_connections=4, deadline_s=deadline_s),
        )

    def drop_connections(self) -> None:
        """Close every pooled connection; the next call opens a fresh one.

        After a timeout the socket may be half-open (the peer gone without a FIN, or
        bytes lost in a partition): reusing it would only wait out another timeout.
        """
        disconnect(self.client)

    @mapped
    def release(
        self, deliveries: Sequence[Delivery], *, undo_delivery: bool, max_deliveries: int = 0
    ) -> int:
        """Hand deliveries back for immediate redelivery; return how many went back.

        ``undo_delivery`` takes back the delivery count (a graceful hand-back is not a
        failed delivery). With ``max_deliveries`` (recovery after a crash), a job already
        delivered that often is dead-lettered instead. Deliveries without a record cannot
        go back: bury them instead.
        """
        groups: dict[tuple[str, int], list[str]] = defaultdict(list)
        for d in deliveries:
            if d.job_id is not None:
                groups[(d.queue, d.priority)] += [d.entry_id, d.job_id]
        if not groups:
            return 0
        batch = ScriptBatch(self.client, held=self._held)
        for (queue, priority), pairs in groups.items():
            qk = self.keys.queue(queue)
            args: list[Any] = [qk.prefix, GROUP, 1 if undo_delivery else 0, max_deliveries]
            args += [*self._dlq_args(), *pairs]
            batch.add(self.scripts.release, [qk.stream(priority), qk.dead], args)
        return sum(int(n) for n in batch.execute())

    @mapped
    def pending_of(self, queue: str, consumer: str) -> list[Delivery]:
        """Entries ``consumer`` still holds in ``queue`` (a restarted worker's leftovers)."""
        qk = self.keys.queue(queue)
        held: list[tuple[int, str]] = []
        for priority in READ_ORDER:
            stream = qk.stream(priority)
            if self.client.exists(stream):
                pending = self.client.xpending_range(stream, GROUP, "-", "+", 10_000, consumer)
                held += [(priority, _s(p["message_id"]) or "") for p in pending]
        with self.client.pipeline(transaction=False) as pipe:  # one round trip for all
            for priority, eid in held:
                pipe.xrange(qk.stream(priority), eid, eid)
            entries = pipe.execute()
        out: list[Delivery] = []
        for (priority, eid), entry in zip(held, entries, strict=True):
            raw = entry[0][1] if entry else {}
            fields = {_s(k) or "": _s(v) or "" for k, v in raw.items()}
            jid = _utf8(raw.get(b"id"))
            out.append(Delivery(queue, priority, eid, jid, None, 0, 0, fields))
        return out

    @mapped
    def recover_own(self, queue: str, consumer: str) -> list[Delivery]:
        """What ``consumer`` still holds in ``queue`` after a crash, with envelopes.

        Entries of jobs that already finished are acked and dropped here, and jobs whose
        record stem cannot use are dead-lettered (``corrupt-record``). Nothing is
        counted: the caller counts each delivery (``count_delivery``) just before it runs
        that job alone, so only the job that really crashes the worker keeps counting up.
        """
        pending = self.pending_of(queue, consumer)
        qk = self.keys.queue(queue)
        with self.client.pipeline(transaction=False) as pipe:  # one round trip for all
            for d in pending:
                pipe.hmget(qk.job(d.job_id or ""), "env", "state", "attempt", "deliveries")
            records = pipe.execute()
        out: list[Delivery] = []
        settled_here: list[Delivery] = []  # finished, or a record stem cannot use
        for d, rec in zip(pending, records, strict=True):
            state = _state(rec[1])
            attempt, deliveries = _int(rec[2] or 0), _int(rec[3] or 0)
            if d.job_id is None or rec[0] is None:
                out.append(d)  # no record: the caller buries it with the raw entry
            elif state in TERMINAL_STATES or None in (state, attempt, deliveries):
                settled_here.append(d)
            else:
                out.append(
                    replace(
                        d,
                        envelope=rec[0],
                        attempt=attempt or 0,
                        deliveries=deliveries or 0,
                        raw=None,
                    )
                )
        if settled_here:
            # release.lua acks a finished job's entry and dead-letters a corrupt one.
            self.release(settled_here, undo_delivery=False)
        return out

    @mapped
    def count_delivery(self, delivery: Delivery, consumer: str) -> Delivery | None:
        """Record one more delivery of ``delivery`` (state started); return it updated.

        None when there is nothing to run: the job finished meanwhile (its entry is
        acked) or its record is one stem cannot use (dead-lettered, ``corrupt-record``).
        """
        assert delivery.job_id is not None  # noqa: S101  (narrows a type; callers check it)
        key = self.keys.queue(delivery.queue).job(delivery.job_id)
        count = int(self.scripts.deliver(keys=[key], args=[consumer]))
        if count <= 0:
            self.release([delivery], undo_delivery=False)
            return None
        return replace(delivery, deliveries=count)

    @mapped
    def promote_due(self, queue: str, limit: int = 1000) -> tuple[int, int]:
        """Move due delayed jobs onto their streams; return (promoted, ms until next due).

        The wait is -1 when nothing is delayed. Server time decides what is due. Scores
        come back as Redis prints them (``1.79e+21`` for a far-future one): parsed as
        floats, and a wait too large to matter is capped at ``MAX_DELAY_MS``.
        """
        qk = self.keys.queue(queue)
        args: list[Any] = [qk.prefix, GROUP, limit, *self._dlq_args()]
        n, next_ms, now_ms = self._call_script(self.scripts.promote, [qk.delayed], args)
        next_at = float(next_ms)
        if not math.isfinite(next_at) or next_at < 0:
            return int(n), -1
        return int(n), int(min(max(0.0, next_at - float(now_ms)), MAX_DELAY_MS))

    @mapped
    def reclaim(
        self,
        queue: str,
        consumer: str,
        *,
        min_idle_ms: int,
        max_deliveries: int,
        page: int = 100,
    ) -> ReclaimStats:
        """Take back every entry of ``queue`` idle longer than ``min_idle_ms``.

        Pages through each ready stream with ``XAUTOCLAIM``; expired jobs go back to their
        stream, jobs delivered ``max_deliveries`` times go to the dead-letter queue.
        """
        qk = self.keys.queue(queue)
        totals = [0, 0, 0]
        taken: list[ReclaimedJob] = []
        for priority in READ_ORDER:
            stream = qk.stream(priority)
            if not self.client.exists(stream):
                continue
            cursor = "0-0"
            while True:
                args: list[Any] = [qk.prefix, GROUP, consumer, min_idle_ms, cursor, page]
                args += [max_deliveries, *self._dlq_args()]
                nxt, *counts, jobs = self.scripts.reclaim(keys=[stream, qk.dead], args=args)
                totals = [a + int(b) for a, b in zip(totals, counts, strict=True)]
                fields = [_s(v) or "" for v in jobs] if isinstance(jobs, list) else []
                taken += [ReclaimedJob(*fields[i : i + 4]) for i in range(0, len(fields) - 3, 4)]
                cursor = _s(nxt) or "0-0"
                if cursor == "0-0":
                    break
        requeued, dead, duplicates = totals
        return ReclaimStats("0-0", requeued, dead, duplicates, tuple(taken))

    # -- results -------------------------------------------------------------------------

    @mapped
    def job(self, queue: str, job_id: str) -> JobRecord | None:
        """The record of ``job_id`` in ``queue``, or None if unknown or expired."""
        raw = self.client.hgetall(self.keys.queue(queue).job(job_id))
        if not raw:
            return None
        return _record(queue, job_id, {_s(k) or "": v for k, v in raw.items()})

    @mapped
    def find_job(self, job_id: str, queues: Sequence[str] | None = None) -> JobRecord | None:
        """Look ``job_id`` up in ``queues`` (default: every known queue)."""
        for queue in queues if queues is not None else self.queues():
            record = self.job(queue, job_id)
            if record is not None:
                return record
        return None

    @mapped
    def wait_done(self, queue: str, job_id: str, timeout_s: float) -> bool:
        """Block until ``job_id`` settles or ``timeout_s`` passes; True if it settled.

        ``wait.lua`` marks the record as waited for (or answers that the job has settled
        or is gone: True at once); a settle pushes the done latch of a job so marked, and
        ``BLMOVE`` of the latch onto itself wakes every waiter and leaves the latch in
        place for later ones. Two round trips before blocking, none more on the wake-up;
        a job nobody waits for gets no latch.
        """
        qk = self.keys.queue(queue)
        if self.scripts.wait(keys=[qk.job(job_id)]) == 1:
            return True
        latch = qk.done(job_id)
        got = self.client.blmove(latch, latch, max(0.01, timeout_s), "RIGHT", "LEFT")
        return got is not None

    # -- schedule --------------------------------------------------------------------

    def schedule_store(self) -> RedisScheduleStore:
        """Beat's schedule store in this namespace, on this broker's connection pool."""
        return RedisScheduleStore(self.client, self.keys, self.faults, self.scripts.schedule_run)


def _record(queue: str, job_id: str, raw: dict[str, bytes]) -> JobRecord:
    """A job record as stored; fields stem cannot read show as dead / 0 / escaped text
    (a record someone else wrote must not break ``stem result``). A settled record in
    today's layout (no envelope) stores ``deliveries`` only when it is not 1."""
    state = _state(raw.get("state")) or JobState.DEAD
    deliveries = _int(raw.get("deliveries"))
    if deliveries is None:
        deliveries = 1 if state in TERMINAL_STATES and "env" not in raw else 0
    return JobRecord(
        id=job_id,
        queue=queue,
        state=state,
        attempt=_int(raw.get("attempt")) or 0,
        deliveries=deliveries,
        envelope=_s(raw.get("env")) or "",
        result=_s(raw.get("result")),
        error=_s(raw.get("error")),
        reason=_s(raw.get("reason")),
        enq_ms=_int(raw.get("enq_ms")),
        start_ms=_int(raw.get("start_ms")),
        end_ms=_int(raw.get("end_ms")),
        eta_ms=_int(raw.get("eta_ms")),
        worker=_s(raw.get("worker")),
        task=_s(raw.get("task")),
    )


def now_ms() -> int:
    """Wall-clock epoch milliseconds of this process (records written by the client)."""
    return time.time_ns() // 1_000_000
