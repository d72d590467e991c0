"""Recovering what a previous run of the same worker held: through the settle loop."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from stem import Stem
from stem.broker import Settlement
from stem.errors import BrokerUnavailable
from stem.states import JobState
from stem.worker.core import Worker, WorkerOptions
from tests.apps import jobs


async def test_a_recovered_jobs_settle_is_retried_while_redis_is_unavailable(
    japp: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    handles = jobs.add.enqueue_many([(1, 2), (3, 4)])
    crashed = Worker(japp, WorkerOptions(queues=("default",), name="recovering"))
    assert len(crashed._fetch(10)) == 2  # it held both, then died
    crashed.lease.stop()

    real_settle = japp.broker.settle
    calls: list[int] = []

    def settle_after_an_outage(settlements: Sequence[Settlement]) -> list[int]:
        calls.append(len(settlements))
        if len(calls) == 1:
            raise BrokerUnavailable("Redis went away for a moment")
        return real_settle(settlements)

    monkeypatch.setattr(japp.broker, "settle", settle_after_an_outage)
    worker = Worker(japp, WorkerOptions(queues=("default",), name="recovering"))
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker._settle_loop)
                await worker._recover_own()
                nursery.cancel_scope.cancel()
    finally:
        worker.lease.stop()
    # One job at a time: the first settle failed and was retried before the second ran.
    assert calls == [1, 1, 1]
    assert [h.status() for h in handles] == [JobState.SUCCEEDED, JobState.SUCCEEDED]
    assert [h.result(timeout_s=0) for h in handles] == [3, 7]
    assert len(worker.held) == 0
