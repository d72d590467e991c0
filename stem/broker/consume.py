"""Fetching and settling: the worker's hot path. Mixed into ``RedisBroker``.

A fetch is one ``fetch.lua`` call per queue; a settle is one pipelined round trip for a
whole batch (one ``complete.lua`` call per ready stream, one ``retry.lua`` / ``bury.lua``
call per other outcome). :meth:`ConsumeMixin.settle_then_fetch` sends a settle and the
next fetch in the same pipeline: a full worker gets its next jobs with the round trip
that frees their slots, instead of one round trip more (docs/performance.md, "Change
rtt"). The fetch runs after the settle's scripts on the same connection (they share the
queue's slot, so also on a cluster), and ``fetch.lua``'s cap counts what the consumer
still holds in Redis then, so the bound on held jobs is kept by Redis itself.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from stem.broker.base import Delivery, LimitSpec, Settlement
from stem.broker.connection import mapped
from stem.broker.keys import GROUP, READ_ORDER
from stem.broker.limits import limits_json
from stem.broker.parts import BrokerParts
from stem.broker.scripts import ScriptBatch
from stem.broker.values import text as _s
from stem.broker.values import utf8 as _utf8
from stem.outcome import Verdict

#: Settled by complete.lua: a revoked job's record is terminal already, so the script
#: only acks and deletes its entry (and gives back its slots). A tuple: ``in`` compares
#: by identity, where a set would call ``Enum.__hash__`` (Python code) for every job.
_ACK_ONLY = (Verdict.COMPLETE, Verdict.REVOKED)


class ConsumeMixin(BrokerParts):
    """fetch, settle, settle_then_fetch (needs ``client``, ``keys``, ``scripts``)."""

    result_ttl_s: int
    dlq_maxlen: int
    dlq_retention_ms: int
    _registered: set[str]
    # Per queue, the stream positions seen by the last empty fetch (for wait_ready).
    _positions: dict[str, dict[str, bytes]]

    def _register(self, queue: str) -> None:
        # The queue registry is namespace-wide (another Cluster slot), so it is written
        # outside the enqueue script, once per queue per process.
        if queue not in self._registered:
            self.client.sadd(self.keys.queues, queue)
            self._registered.add(queue)

    @mapped
    def fetch(
        self, queue: str, consumer: str, count: int, limits: Sequence[LimitSpec] = ()
    ) -> list[Delivery]:
        """Deliver up to ``count`` jobs of ``queue`` to ``consumer``, highest priority first.

        Returns an empty list when nothing is ready; ``wait_ready`` then blocks until
        something arrives, without missing entries added in between. Fewer than
        ``count`` jobs means the queue was drained: ``wait_ready`` may follow at once.
        ``limits`` are the definitions in force: a job one of them refuses now is parked
        (throttled) in the same call instead of delivered; without them no job is ever
        throttled.
        """
        self._register(queue)
        keys, args = self._fetch_call(queue, consumer, count, limits, 0)
        reply = self._call_script(self.scripts.fetch, keys, args)
        return self._fetched(queue, count, reply)

    def _fetch_call(
        self, queue: str, consumer: str, count: int, limits: Sequence[LimitSpec], cap: int
    ) -> tuple[list[str], list[Any]]:
        """The keys and args of one ``fetch.lua`` call (``cap`` 0: no cap)."""
        qk = self.keys.queue(queue)
        args: list[Any] = [qk.prefix, GROUP, consumer, count, *self._dlq_args()]
        args += [limits_json(tuple(limits)) if limits else "", cap or ""]
        return qk.streams(), args

    def _fetched(self, queue: str, count: int, reply: list[Any]) -> list[Delivery]:
        """The deliveries of one ``fetch.lua`` reply; positions noted for ``wait_ready``."""
        qk = self.keys.queue(queue)
        if reply[0] == 0:
            self._positions[queue] = dict(zip(qk.streams(), reply[1:], strict=True))
            return []
        out = [_delivery(queue, item) for item in reply[1:]]
        known = self._positions.get(queue)
        if known is not None and len(out) < count:
            # Fewer than asked: this read drained the queue, so a wait may start from
            # the last entry delivered on each stream without a fetch that finds nothing
            # first. Anything not read yet lies past it (a stream is read in id order);
            # entries past it that others took only wake the wait early.
            for d in out:
                stream = qk.stream(d.priority)
                if _stream_id(d.entry_id) > _stream_id(known[stream]):
                    known[stream] = d.entry_id.encode()
        return out

    @mapped
    def settle_then_fetch(
        self,
        settlements: Sequence[Settlement],
        queue: str,
        consumer: str,
        count: int,
        limits: Sequence[LimitSpec] = (),
        cap: int = 0,
    ) -> tuple[list[int], list[Delivery]]:
        """:meth:`settle` ``settlements``, then :meth:`fetch` up to ``count`` jobs of
        ``queue``, in one pipelined round trip; returns (settle replies, deliveries).

        ``cap`` > 0: the fetch delivers no more than leaves ``consumer`` holding ``cap``
        entries of ``queue`` in Redis (counted after the settle), whatever ``count`` says:
        a settle that did not ack (a refusal, a retry) cannot push the worker over its
        bound. Fewer deliveries than ``count`` means the queue was drained (or the cap
        bit). A refused settle raises like :meth:`settle` does; the jobs the fetch may
        have delivered then stay pending until the reclaimer hands them on.
        """
        self._register(queue)
        batch = ScriptBatch(self.client, held=self._held)
        parse = self._settle_calls(batch, settlements)
        batch.add(self.scripts.fetch, *self._fetch_call(queue, consumer, count, limits, cap))
        replies = batch.execute()
        got = self._fetched(queue, count, replies[-1])
        if len(got) < count and batch.late and batch.late[0] < len(replies) - 1:
            # A settle ran after the fetch (Redis had lost the scripts, or the slot
            # moved): the cap counted its jobs as held. Fetch what it freed now.
            call = self._fetch_call(queue, consumer, count - len(got), limits, cap)
            got += self._fetched(queue, count - len(got), self.scripts.fetch(*call))
        return parse(replies[:-1]), got

    def _dlq_args(self) -> list[int]:
        """What every script that may dead-letter needs: result TTL, DLQ bounds."""
        return [self.result_ttl_s, self.dlq_maxlen, self.dlq_retention_ms]

    @mapped
    def queue_drained(self, queue: str) -> bool:
        """Whether ``queue`` has nothing ready, held, delayed or waiting for a limit, read
        in one snapshot (``drained.lua``): what a burst worker checks before it exits."""
        qk = self.keys.queue(queue)
        keys = [*qk.streams(), qk.delayed, qk.stats]
        return bool(self.scripts.drained(keys=keys, args=[]))

    @mapped
    def settle(self, settlements: Sequence[Settlement]) -> list[int]:
        """Settle many deliveries in one pipelined round trip.

        Completions are grouped into one script call per ready stream; retries and
        dead-letters are one call each. Each reply is 1 done, 0 already terminal, -1 the
        entry was no longer ours (a lost lease; the current holder settles instead).
        """
        batch = ScriptBatch(self.client, held=self._held)
        parse = self._settle_calls(batch, settlements)
        return parse(batch.execute())

    def _settle_calls(
        self, batch: ScriptBatch, settlements: Sequence[Settlement]
    ) -> Callable[[list[Any]], list[int]]:
        """Add the script calls that settle ``settlements`` to ``batch``; return what
        turns their replies into :meth:`settle`'s."""
        completes: dict[tuple[str, int], list[int]] = defaultdict(list)
        for index, item in enumerate(settlements):
            if item.verdict in _ACK_ONLY:
                completes[(item.delivery.queue, item.delivery.priority)].append(index)
            else:
                self._settle_one(batch, item)
        for (queue, priority), indexes in completes.items():
            qk = self.keys.queue(queue)
            args: list[Any] = [qk.prefix, GROUP, *self._dlq_args()]
            for i in indexes:
                d = settlements[i].delivery
                args += (d.entry_id, d.job_id or "", settlements[i].payload)
            batch.add(self.scripts.complete, [qk.stream(priority)], args)

        def parse(replies: list[Any]) -> list[int]:
            out = [0] * len(settlements)
            singles = [i for i, s in enumerate(settlements) if s.verdict not in _ACK_ONLY]
            for i, reply in zip(singles, replies, strict=False):
                out[i] = int(reply)
            for indexes, flags in zip(completes.values(), replies[len(singles) :], strict=True):
                for i, flag in zip(indexes, flags, strict=True):
                    out[i] = 1 if flag == ord("1") else 0
            return out

        return parse

    def _settle_one(self, batch: ScriptBatch, item: Settlement) -> None:
        d = item.delivery
        qk = self.keys.queue(d.queue)
        stream = qk.stream(d.priority)
        jid = d.job_id or ""
        if item.verdict is Verdict.RETRY:
            keys = [stream, qk.job(jid), qk.delayed, qk.dead, qk.done(jid)]
            args: list[Any] = [GROUP, d.entry_id, jid, item.delay_ms, item.payload]
            args += self._dlq_args()
            batch.add(self.scripts.retry, keys, args)
        else:
            keys = [stream, qk.job(jid), qk.dead, qk.done(jid)]
            raw = json.dumps(d.raw or {})
            args = [GROUP, d.entry_id, jid, item.reason, item.payload, raw]
            args += [item.state.value, *self._dlq_args()]
            batch.add(self.scripts.bury, keys, args)


def _stream_id(entry_id: str | bytes) -> tuple[int, int]:
    """A stream entry id as a comparable pair (``"1-0"`` -> ``(1, 0)``)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _delivery(queue: str, item: list[Any]) -> Delivery:
    """One delivery from fetch.lua's reply. An entry stem did not write (no record) keeps
    its raw fields, as text even when they are not UTF-8, so it can be dead-lettered."""
    index, eid, jid, env, attempt, deliveries, raw = item
    fields = None
    if raw is not None:
        fields = {(_s(raw[i]) or ""): (_s(raw[i + 1]) or "") for i in range(0, len(raw), 2)}
    job_id = _utf8(jid)
    if job_id is None and env is not None:  # a record under an id stem cannot have made
        env, fields = None, {"id": _s(jid) or ""}
    return Delivery(
        queue=queue,
        priority=READ_ORDER[int(index) - 1],
        entry_id=eid.decode(),
        job_id=job_id,
        envelope=env,
        attempt=int(attempt),
        deliveries=int(deliveries),
        raw=fields,
    )
