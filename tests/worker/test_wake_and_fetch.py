"""An idle worker wakes and fetches in one thread call; a late fetch never outlives the stop."""

from __future__ import annotations

from stem import Stem
from stem.worker.core import Worker, WorkerOptions
from tests.apps import jobs


def test_a_woken_worker_fetches_the_job_that_woke_it_in_the_same_call(japp: Stem) -> None:
    worker = Worker(japp, WorkerOptions(queues=("default",), name="waker"))
    try:
        assert worker._fetch(10) == []  # empty: the wait now has positions to wait from
        handle = jobs.add.enqueue(1, 2)
        got = worker._wait_then_fetch(30_000, 10)
        assert [d.job_id for d in got] == [handle.id]
        assert len(worker.held) == 1  # held (renewed, handed back) before it is returned
    finally:
        worker.lease.stop()


def test_a_wait_abandoned_by_a_stop_fetches_nothing_once_fetching_is_closed(japp: Stem) -> None:
    worker = Worker(japp, WorkerOptions(queues=("default",), name="late"))
    try:
        assert worker._fetch(10) == []
        jobs.add.enqueue(1, 2)
        worker._fetch_gate.close()  # what the final hand-back does first
        assert worker._wait_then_fetch(30_000, 10) == []
        assert len(worker.held) == 0
        assert japp.broker.queue_stats("default").ready == 1  # still there for another worker
    finally:
        worker.lease.stop()
