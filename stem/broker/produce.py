"""The broker's producing side: ``enqueue`` (one script call per chunk of jobs).

A call of up to ``ENQUEUE_CHUNK`` jobs without replica confirmation (every single-job
enqueue) goes out on the broker's held connection as an ``EVALSHA`` packed from a cached
head (see :mod:`stem.broker.held`); on a Redis Cluster, whose client routes by slot, it
goes through redis-py's script call instead. Larger calls, and calls that wait for
replicas, are pipelined (:class:`ScriptBatch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

import redis

from stem.broker.base import NewJob
from stem.broker.connection import Faults, mapped, redact
from stem.broker.held import ScriptCall
from stem.broker.keys import GROUP
from stem.broker.parts import BrokerParts
from stem.broker.scripts import ScriptBatch
from stem.broker.values import text as _s
from stem.errors import EnqueueIncomplete, EnqueueNotReplicated

#: Jobs per enqueue script call: large enough to amortise the call, small enough that one
#: call never blocks Redis for long (about a millisecond).
ENQUEUE_CHUNK = 500


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


class ProducerMixin(BrokerParts):
    """``enqueue`` (needs ``client``, ``keys``, ``scripts``, ``faults`` and the replica
    settings; ``_held`` is None on a cluster)."""

    enqueue_replicas: int
    enqueue_wait_ms: int
    _register: Callable[[str], None]  # the queue registry's (ConsumeMixin)
    _enqueue_calls: dict[str, ScriptCall]

    @mapped
    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[tuple[str, bool]]:
        """Add ``jobs`` to ``queue`` in one round trip; return (job id, created) per job.

        A job whose idempotency key or id is already known is not added again: its pair
        carries the existing job's id and ``False``.
        """
        one_call = len(jobs) <= ENQUEUE_CHUNK and not self.enqueue_replicas
        call = self._enqueue_calls.get(queue)  # only a valid name is there
        if one_call and call is not None and self._held is not None:
            return _pairs(jobs, self._held.evalsha(call, _job_args(jobs)))
        qk = self.keys.queue(queue)  # checks the name before anything is written
        self._register(queue)
        if one_call and self._held is not None:
            call = ScriptCall(self.scripts.enqueue, [qk.delayed], [qk.prefix, GROUP])
            self._enqueue_calls[queue] = call
            return _pairs(jobs, self._held.evalsha(call, _job_args(jobs)))
        if one_call:
            args = [qk.prefix, GROUP, *_job_args(jobs)]
            return _pairs(jobs, self.scripts.enqueue(keys=[qk.delayed], args=args))
        batch = ScriptBatch(
            self.client,
            wait_replicas=self.enqueue_replicas,
            wait_ms=self.enqueue_wait_ms,
            held=self._held,
        )
        chunks = list(_chunks(jobs, ENQUEUE_CHUNK))
        for chunk in chunks:
            batch.add(self.scripts.enqueue, [qk.delayed], [qk.prefix, GROUP, *_job_args(chunk)])
        replies = batch.execute_each()
        _raise_if_refused(chunks, replies, self.faults)
        if batch.replicated is not None and batch.replicated < self.enqueue_replicas:
            raise EnqueueNotReplicated(
                f"{len(jobs)} job(s) were written on the master at {redact(self.url)}, but "
                f"only {batch.replicated} of {self.enqueue_replicas} replica(s) confirmed them "
                f"within {self.enqueue_wait_ms} ms: enqueue again with the same idempotency "
                "key to be sure they survive a failover",
                acknowledged=batch.replicated,
                wanted=self.enqueue_replicas,
            )
        return [pair for c, r in zip(chunks, replies, strict=True) for pair in _pairs(c, r)]


def _job_args(jobs: Sequence[NewJob]) -> list[str]:
    """One enqueue.lua argument per job (its layout is documented in the script)."""
    return [
        f"{j.id}\n{j.priority}\n{j.eta_ms}\n{j.idempotency_ttl_s}\n{j.idempotency_key}\n"
        f"{1 if j.chosen_id else 0}\n{j.limits}\n"
        f"{'' if j.keep_result_s is None else j.keep_result_s}\n{j.envelope}"
        for j in jobs
    ]


def _raise_if_refused(
    chunks: Sequence[Sequence[NewJob]], replies: list[Any], faults: Faults
) -> None:
    """Raise ``EnqueueIncomplete`` if Redis refused some chunks (e.g. OOM at maxmemory),
    or the refusal itself (sorted by ``faults``) when it refused every chunk.

    A chunk's script refused by maxmemory wrote nothing (its first write is where Redis
    checks), so the jobs written are those of the chunks that answered. One exception: a
    queue key of the wrong type (put there by hand: stem never writes one) fails the
    script at the first job that needs it, and the jobs before it in that chunk stay
    written although counted as refused here.
    """
    refused = [r for r in replies if isinstance(r, redis.RedisError)]
    if not refused:
        return
    total = sum(len(c) for c in chunks)
    written = sum(
        len(c) for c, r in zip(chunks, replies, strict=True) if not isinstance(r, redis.RedisError)
    )
    if written == 0:
        raise faults.classify(refused[0]) from refused[0]
    raise EnqueueIncomplete(
        f"{written} of {total} jobs were enqueued before Redis at {redact(faults.url)} "
        f"refused: {refused[0]}",
        written=written,
        total=total,
    )


def _pairs(jobs: Sequence[NewJob], reply: bytes | list[Any]) -> list[tuple[str, bool]]:
    if isinstance(reply, bytes):  # every job was created
        return [(j.id, True) for j in jobs]
    flags, matched = reply[0], iter(reply[1:])
    return [
        (j.id, True) if flag == ord("1") else (_s(next(matched)) or "", False)
        for j, flag in zip(jobs, flags, strict=True)
    ]
