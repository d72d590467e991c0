"""The lease keeper's count of lost leases: real takeovers only, never our own settles."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from stem import Stem
from stem.broker import Settlement
from stem.outcome import Verdict
from stem.worker.core import Worker, WorkerOptions
from stem.worker.lease import LeaseTiming
from tests.apps import jobs


@pytest.fixture
def worker(japp: Stem) -> Iterator[Worker]:
    w = Worker(japp, WorkerOptions(queues=("default",), name="keeper-test"))
    yield w
    w.lease.stop()


async def test_entries_our_own_settle_acked_before_the_keeper_saw_it_are_not_lost_leases(
    japp: Stem, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs.add.enqueue_many([(i, i) for i in range(3)])
    held = worker._fetch(10)
    assert len(held) == 3
    real_settle = japp.broker.settle

    def settle_then_renew(settlements: Sequence[Settlement]) -> list[int]:
        # The settle has acked the entries; the event loop has not removed them from
        # the held set yet (a blocked loop, a slow reply) when the keeper renews.
        out = real_settle(settlements)
        worker.lease.renew_once()
        return out

    monkeypatch.setattr(japp.broker, "settle", settle_then_renew)
    worker.settler.pending = [Settlement(d, Verdict.COMPLETE, "0") for d in held]
    await worker._flush()
    assert (worker.lease.lost, len(worker.held)) == (0, 0)


def test_entries_the_reclaimer_took_back_are_counted_as_lost_leases(
    japp: Stem, worker: Worker
) -> None:
    jobs.add.enqueue_many([(i, i) for i in range(3)])
    assert len(worker._fetch(10)) == 3
    japp.broker.reclaim("default", "reclaimer", min_idle_ms=0, max_deliveries=5)
    worker.lease.renew_once()
    assert worker.lease.lost == 3


def test_entries_another_consumer_claimed_are_counted_as_lost_leases(
    japp: Stem, worker: Worker
) -> None:
    jobs.add.enqueue_many([(i, i) for i in range(2)])
    held = worker._fetch(10)
    stream = japp.broker.keys.queue("default").stream(0)
    japp.broker.client.xclaim(stream, "workers", "thief", 0, [d.entry_id for d in held])
    worker.lease.renew_once()
    assert worker.lease.lost == 2


def test_the_documented_lease_timing_holds_for_the_default_lease() -> None:
    timing = LeaseTiming(30.0)
    assert (timing.interval_s, timing.deadline_s, timing.survivable_partition_s) == (
        7.5,
        3.0,
        18.25,
    )
