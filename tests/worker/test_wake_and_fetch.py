"""An idle worker wakes and fetches in one thread call (one round trip when it serves one
queue); a late fetch never outlives the stop, and a stop does not wait out a blocked wait.

With one queue the wait's replies are read on the worker's trio thread
(``Worker._wait_here_then_fetch``, a ``PendingFetch``): the same guarantees, tested here
through that path too."""

from __future__ import annotations

import threading
import time

import pytest
import redis
import trio

from stem import Stem
from stem.broker import Delivery, RedisBroker
from stem.errors import BrokerUnavailable
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


def test_one_queue_waits_and_fetches_in_one_call_whose_fetch_runs_when_the_job_lands(
    japp: Stem,
) -> None:
    broker = japp.broker
    assert broker.wait_and_fetch("default", "solo", 10) is None  # nothing to wait from yet
    assert broker.fetch("default", "solo", 10) == []
    landed: list[str] = []
    enqueuer = threading.Timer(0.2, lambda: landed.append(jobs.add.enqueue(1, 2).id))
    enqueuer.start()
    got = broker.wait_and_fetch("default", "solo", 10, timeout_ms=30_000)
    enqueuer.join()
    assert got is not None
    assert [d.job_id for d in got] == landed  # the call that waited delivered it


def test_a_wait_and_fetch_after_redis_lost_its_scripts_still_fetches(japp: Stem) -> None:
    broker = japp.broker
    assert broker.fetch("default", "solo", 10) == []
    handle = jobs.add.enqueue(1, 2)
    broker.client.script_flush()
    got = broker.wait_and_fetch("default", "solo", 10, timeout_ms=30_000)
    assert got is not None and [d.job_id for d in got] == [handle.id]


def test_closing_fetching_cuts_a_blocked_wait_short_instead_of_waiting_it_out(
    japp: Stem,
) -> None:
    worker = Worker(japp, WorkerOptions(queues=("default",), name="stopper"))
    try:
        assert worker._fetch(10) == []
        results: list[list[Delivery]] = []
        waiter = threading.Thread(
            target=lambda: results.append(worker._wait_then_fetch(60_000, 10))
        )
        waiter.start()
        deadline = time.monotonic() + 30
        while not japp.broker._waiting:  # blocked in Redis
            assert time.monotonic() < deadline, "the wait never blocked"
            time.sleep(0.01)
        closed_at = time.monotonic()
        worker._fetch_gate.close(japp.broker.interrupt_waits)  # what a stop does first
        assert time.monotonic() - closed_at < 30  # far from the 60 s the wait asked for
        waiter.join(timeout=30)
        assert results == [[]] and len(worker.held) == 0
    finally:
        worker.lease.stop()


def test_a_wait_on_a_connection_redis_dropped_and_reopened_is_still_cut_short(
    japp: Stem, redis_url: str
) -> None:
    broker = japp.broker
    assert broker.fetch("default", "solo", 10) == []
    assert broker.wait_and_fetch("default", "solo", 10, timeout_ms=1) == []  # a first wait
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_kill_filter(_type="normal", skipme=True)  # its connection is gone
    finally:
        admin.close()
    results: list[object] = []
    waiter = threading.Thread(
        target=lambda: results.append(broker.wait_and_fetch("default", "solo", 10, (), 60_000))
    )
    waiter.start()
    deadline = time.monotonic() + 30
    while not broker._waiting:
        assert time.monotonic() < deadline, "the wait never blocked"
        time.sleep(0.01)
    while waiter.is_alive() and time.monotonic() < deadline:  # as FetchGate.close does
        broker.interrupt_waits()
        waiter.join(timeout=0.1)
    assert not waiter.is_alive(), "interrupt_waits named a stale connection"
    assert results == [[]]


async def test_a_wait_read_on_the_trio_thread_hands_over_the_job_that_ended_it(
    japp: Stem,
) -> None:
    worker = Worker(japp, WorkerOptions(queues=("default",), name="trio-waker"))
    try:
        assert await worker._call(worker._fetch, 10) == []
        got: list[list[Delivery] | None] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _append(got, worker._wait_here_then_fetch(30_000, 10)))
            await _until_blocked(japp)
            handle = await trio.to_thread.run_sync(jobs.add.enqueue, 1, 2)
        [delivered] = got
        assert delivered is not None and [d.job_id for d in delivered] == [handle.id]
        assert len(worker.held) == 1  # held (renewed, handed back) before it is returned
        assert not japp.broker._waiting  # the connection is no longer named as waiting
    finally:
        worker.lease.stop()


async def test_a_stop_during_a_wait_on_the_trio_thread_keeps_what_its_fetch_delivered(
    japp: Stem,
) -> None:
    # The read cannot be cut short here (as with an ACL without client|unblock), so the
    # stopped wait only ends when a job lands: the fetch delivers it after the cancel, and
    # the job must be held for the final hand-back, not pending in Redis unknown to all.
    worker = Worker(japp, WorkerOptions(queues=("default",), name="trio-stopped"))
    try:
        assert await worker._call(worker._fetch, 10) == []
        got: list[list[Delivery] | None] = []
        stop = trio.CancelScope()

        async def wait() -> None:
            with stop:
                await _append(got, worker._wait_here_then_fetch(60_000, 10))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await _until_blocked(japp)
            japp.broker._unblockable = False
            stop.cancel()
            handle = await trio.to_thread.run_sync(jobs.add.enqueue, 1, 2)
        assert got == []  # cancelled: nothing handed to runners
        assert [d.job_id for d in worker.held.snapshot()] == [handle.id]
    finally:
        worker.lease.stop()


async def test_a_stop_cuts_a_wait_on_the_trio_thread_short_instead_of_waiting_it_out(
    japp: Stem, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(japp, WorkerOptions(queues=("default",), name="trio-cut"))
    try:
        assert await worker._call(worker._fetch, 10) == []
        with trio.fail_after(30):  # far from the 60 s the wait asked for
            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker._wait_here_then_fetch, 60_000, 10)
                await _until_blocked(japp)
                nursery.cancel_scope.cancel()
        # Ended by CLIENT UNBLOCK and read to its end, not given up on at the deadline.
        assert "did not end" not in caplog.text
        assert len(worker.held) == 0 and not japp.broker._waiting
        assert japp.broker.ping() is None  # the pool still serves
    finally:
        worker.lease.stop()


def test_a_pending_fetch_whose_connection_redis_killed_fails_as_unavailable(
    japp: Stem, redis_url: str
) -> None:
    broker = japp.broker
    assert broker.fetch("default", "solo", 10) == []
    pending = broker.begin_wait_and_fetch("default", "solo", 10, (), 60_000)
    assert pending is not None
    deadline = time.monotonic() + 30
    while pending.client_id is None:
        assert not pending.poll()
        assert time.monotonic() < deadline, "CLIENT ID never answered"
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_kill_filter(_id=str(pending.client_id))
    finally:
        admin.close()
    with pytest.raises(BrokerUnavailable, match="cannot reach Redis"):
        while not pending.poll():
            assert time.monotonic() < deadline, "the killed connection was never noticed"
    assert not broker._waiting
    assert broker.fetch("default", "solo", 10) == []  # the pool opens a fresh connection


async def _append(out: list[list[Delivery] | None], call: object) -> None:
    out.append(await call)  # type: ignore[misc]


async def _until_blocked(app: Stem) -> None:
    with trio.fail_after(30):
        while not app.broker._waiting:  # CLIENT ID read: the read is blocked in Redis
            await trio.sleep(0.01)


def test_a_resp3_push_during_a_wait_is_not_taken_for_one_of_its_replies(
    japp: Stem, redis_url: str, namespace: str
) -> None:
    # Client-side caching: an invalidation pushed to the waiting connection (RESP3) must
    # be skipped, or the replies shift and the fetch's jobs are read as something else.
    broker = RedisBroker(
        redis_url, namespace=namespace, client=redis.Redis.from_url(redis_url, protocol=3)
    )
    other = redis.Redis.from_url(redis_url)
    try:
        assert broker.fetch("default", "w", 10) == []
        pool = broker.client.connection_pool
        conn = pool.get_connection()
        conn.send_command("CLIENT", "TRACKING", "ON")
        assert conn.read_response() == b"OK"
        conn.send_command("GET", f"{namespace}:tracked")
        conn.read_response()
        pool.release(conn)
        pending = broker.begin_wait_and_fetch("default", "w", 10, (), 30_000)
        assert pending is not None and pending._conn is conn  # the tracking connection
        other.set(f"{namespace}:tracked", "1")  # its invalidation is pushed to the wait
        deadline = time.monotonic() + 30
        while pending.client_id is None or not other.get(f"{namespace}:tracked"):
            assert not pending.poll() and time.monotonic() < deadline
        handle = jobs.add.enqueue(1, 2)
        while not pending.poll():
            assert time.monotonic() < deadline, "the wait never ended"
        got = pending.result()
        assert got is not None and [d.job_id for d in got] == [handle.id]
    finally:
        other.close()
        broker.close()


def test_a_pending_fetch_whose_connection_was_closed_under_it_fails_as_unavailable(
    japp: Stem,
) -> None:
    broker = japp.broker
    assert broker.fetch("default", "solo", 10) == []
    pending = broker.begin_wait_and_fetch("default", "solo", 10, (), 60_000)
    assert pending is not None
    broker.client.connection_pool.disconnect()  # what closing the app does to a wait
    with pytest.raises(BrokerUnavailable, match="closed during a wait"):
        pending.fileno()
    assert broker.fetch("default", "solo", 10) == []  # the pool opens a fresh connection


def test_a_pending_fetch_that_redis_never_answers_gives_up_after_the_socket_timeout(
    redis_url: str, namespace: str
) -> None:
    # A Redis that takes the commands and answers nothing (paused here; a half-open
    # connection in production): the wait gives up once its read timeout and the
    # client's socket timeout have passed, instead of waiting for ever.
    client = redis.Redis.from_url(redis_url, socket_timeout=0.5)
    broker = RedisBroker(redis_url, namespace=namespace, client=client)
    admin = redis.Redis.from_url(redis_url)
    try:
        assert broker.fetch("default", "solo", 10) == []
        # The wait takes a pooled connection (fetches go out on the broker's held one):
        # one connected now, so that the pause below meets the wait, not a handshake.
        client.ping()
        admin.client_pause(2_000, all=True)  # longer than the 0.5 s socket timeout
        pending = broker.begin_wait_and_fetch("default", "solo", 10, (), 1)
        assert pending is not None
        deadline = time.monotonic() + 15
        with pytest.raises(BrokerUnavailable, match="no reply"):
            while not pending.poll():
                assert time.monotonic() < deadline, "the silent wait was never given up"
                time.sleep(0.05)
    finally:
        admin.ping()  # answered once the pause is over (CLIENT UNPAUSE would wait too)
        admin.close()
        broker.close()


async def test_a_stop_during_a_wait_redis_does_not_answer_gives_up_at_the_deadline(
    japp: Stem, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(japp, WorkerOptions(queues=("default",), name="trio-silent"))
    admin = redis.Redis.from_url(redis_url)
    try:
        assert await worker._call(worker._fetch, 10) == []
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker._wait_here_then_fetch, 60_000, 10)
                await _until_blocked(japp)
                # Past the stop's 3 s deadline; the unblock goes unanswered too.
                admin.client_pause(5_000, all=True)
                nursery.cancel_scope.cancel()
        assert "did not end within" in caplog.text  # abandoned: its jobs, if any, wait
        assert len(worker.held) == 0 and not japp.broker._waiting  # for the reclaimer
    finally:
        admin.ping()  # answered once the pause is over
        admin.close()
        worker.lease.stop()


async def test_a_stop_while_the_wait_is_being_sent_to_a_silent_redis_does_not_wait_for_it(
    japp: Stem, redis_url: str
) -> None:
    # Sending the wait may have to connect first; against a Redis that does not answer
    # that takes a socket timeout. A stop then returns at once, and once connected the
    # thread sends nothing: the job ready all along stays ready for another worker (a
    # wait sent then would fetch it after the stop's hand-back, for the reclaimer).
    worker = Worker(japp, WorkerOptions(queues=("default",), name="trio-sending"))
    admin = redis.Redis.from_url(redis_url)
    try:
        assert await worker._call(worker._fetch, 10) == []
        await trio.to_thread.run_sync(jobs.add.enqueue, 1, 2)  # past the wait's positions
        japp.broker.client.connection_pool.disconnect()  # the send must reconnect
        admin.client_pause(6_000, all=True)  # and its handshake goes unanswered
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker._wait_here_then_fetch, 60_000, 10)
                while not worker.threads._busy:  # the send is under way in its thread
                    await trio.sleep(0.01)
                cancelled_at = trio.current_time()
                nursery.cancel_scope.cancel()
        assert trio.current_time() - cancelled_at < 3  # the pause had seconds to go
        with trio.fail_after(30):  # the pause ends and the thread connects
            while worker.threads._busy:
                await trio.sleep(0.05)
        assert len(worker.held) == 0 and not japp.broker._waiting
        stats = japp.broker.queue_stats("default")
        assert (stats.ready, stats.pending) == (1, 0)
    finally:
        admin.ping()  # answered once the pause is over
        admin.close()
        worker.lease.stop()
