"""What a settled job leaves in Redis: a small record for its retention, no latch unless
someone waits; with ``keep_result_s=0`` nothing (docs/scaling.md, "Redis memory per
job"). Memory is measured with ``MEMORY USAGE`` on the real server."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from stem import JobState, Stem
from stem.broker import RESULT_TTL_S, Delivery, RedisBroker, Settlement
from stem.errors import JobFailed, JobNotFound
from stem.handle import JobHandle
from stem.outcome import Verdict
from stem.states import DeadReason


def _run(broker: RedisBroker, verdict: Verdict = Verdict.COMPLETE, payload: str = "null") -> None:
    """Fetch every ready job of the default queue and settle it with ``verdict``."""
    while deliveries := broker.fetch("default", "w1", 500):
        broker.settle([_settlement(d, verdict, payload) for d in deliveries])


def _settlement(d: Delivery, verdict: Verdict, payload: str) -> Settlement:
    if verdict is Verdict.BURY:
        return Settlement(d, verdict, payload, reason=DeadReason.NOT_RETRYABLE.value)
    return Settlement(d, verdict, payload)


def _keys(broker: RedisBroker, pattern: str) -> list[bytes]:
    return list(broker.client.scan_iter(f"{broker.keys.namespace}:{pattern}", count=1000))


def _wait_for(what: str, check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _blocked_waiter(handle: JobHandle) -> tuple[threading.Thread, list[Any]]:
    """A thread blocked in ``handle.result()``; returns once its registration is seen."""
    got: list[Any] = []

    def wait() -> None:
        try:
            got.append(handle.result(timeout_s=60))
        except Exception as exc:  # the test asserts on it
            got.append(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    jkey = handle.app.broker.keys.queue(handle.queue).job(handle.id)
    _wait_for("the waiter", lambda: handle.app.broker.client.hexists(jkey, "waited"))
    return thread, got


def test_a_settled_no_op_job_keeps_at_most_250_bytes_for_an_hour_and_no_latch(
    app: Stem, broker: RedisBroker
) -> None:
    handles = app.enqueue_many("bench.noop_sync", [[i] for i in range(200)])
    _run(broker)
    sizes = [broker.client.memory_usage(broker.keys.queue("default").job(h.id)) for h in handles]
    assert max(sizes) <= 250, sizes[:5]
    assert _keys(broker, "{default}:done:*") == []
    ttl = broker.client.ttl(broker.keys.queue("default").job(handles[0].id))
    assert 0 < ttl <= RESULT_TTL_S == 3600
    record = handles[0].info()
    assert record is not None
    assert (record.state, record.result, record.task) == (
        JobState.SUCCEEDED,
        "null",
        "bench.noop_sync",
    )
    assert record.enq_ms is not None and record.start_ms is not None and record.end_ms is not None
    assert record.enq_ms <= record.start_ms <= record.end_ms


def test_a_job_of_a_task_with_keep_result_s_0_leaves_no_key_once_it_succeeds(
    app: Stem, broker: RedisBroker
) -> None:
    @app.task(name="forgetful", keep_result_s=0)
    def forgetful() -> None: ...

    handle = forgetful.enqueue()
    _run(broker)
    assert handle.info() is None
    assert _keys(broker, "{default}:job:*") + _keys(broker, "{default}:done:*") == []
    with pytest.raises(JobNotFound):
        handle.result(timeout_s=5)


def test_a_dead_job_with_keep_result_s_0_leaves_only_its_dlq_entry_which_replays(
    app: Stem, broker: RedisBroker
) -> None:
    handle = app.enqueue("some.task", [1], keep_result_s=0)
    _run(broker, Verdict.BURY, '{"type": "ValueError", "message": "no"}')
    assert handle.info() is None
    [entry] = broker.dead_entries("default")
    assert (entry.job_id, entry.reason) == (handle.id, "not-retryable")
    assert broker.replay("default", [entry.entry_id]) == [handle.id]
    assert handle.status() is JobState.QUEUED
    _run(broker)  # the replayed job keeps its retention: nothing stays once it succeeds
    assert handle.info() is None


def test_a_failed_job_keeps_its_error_and_task_but_not_its_envelope(
    app: Stem, broker: RedisBroker
) -> None:
    handle = app.enqueue("some.task", ["x" * 500])
    _run(broker, Verdict.BURY, '{"type": "ValueError", "message": "no"}')
    record = handle.info()
    assert record is not None
    assert (record.state, record.reason, record.task, record.envelope) == (
        JobState.DEAD,
        "not-retryable",
        "some.task",
        "",
    )
    with pytest.raises(JobFailed, match="ValueError: no"):
        handle.result(timeout_s=5)
    [entry] = broker.dead_entries("default")
    assert "x" * 500 in entry.envelope  # the DLQ entry keeps what a replay needs


def test_keep_result_s_of_one_enqueue_sets_how_long_its_record_stays(
    app: Stem, broker: RedisBroker
) -> None:
    @app.task(name="kept", keep_result_s=0)
    def kept() -> None: ...

    handle = kept.enqueue_with(keep_result_s=30)()
    _run(broker)
    assert 0 < broker.client.ttl(broker.keys.queue("default").job(handle.id)) <= 30
    assert handle.result(timeout_s=5) is None


def test_a_waiter_blocked_on_a_keep_0_job_when_it_settles_gets_its_result(
    app: Stem, broker: RedisBroker
) -> None:
    handle = app.enqueue("some.task", keep_result_s=0)
    thread, got = _blocked_waiter(handle)
    _run(broker, payload='{"answer": 42}')
    thread.join(timeout=60)
    assert got == [{"answer": 42}]
    jkey = broker.keys.queue("default").job(handle.id)
    assert 0 < broker.client.ttl(jkey) <= 60  # kept only long enough for the waiter


def test_a_waiter_that_arrives_after_the_job_settled_returns_at_once(
    app: Stem, broker: RedisBroker
) -> None:
    handle = app.enqueue("some.task")
    _run(broker, payload="7")
    assert broker.wait_done("default", handle.id, timeout_s=30) is True
    assert handle.result(timeout_s=30) == 7


def test_a_dead_lettered_job_wakes_a_blocked_waiter_with_its_error(
    app: Stem, broker: RedisBroker
) -> None:
    handle = app.enqueue("some.task")
    thread, got = _blocked_waiter(handle)
    _run(broker, Verdict.BURY, '{"type": "ValueError", "message": "no"}')
    thread.join(timeout=60)
    [error] = got
    assert isinstance(error, JobFailed)


def test_a_keep_0_job_whose_lease_was_lost_stays_settled_so_its_copy_is_dropped(
    app: Stem, broker: RedisBroker
) -> None:
    handle = app.enqueue("some.task", keep_result_s=0)
    [d] = broker.fetch("default", "w1", 1)
    stats = broker.reclaim("default", "reclaimer", min_idle_ms=0, max_deliveries=5)
    assert stats.requeued == 1  # a copy is back in the stream; d's entry is not ours now
    assert broker.settle([Settlement(d, Verdict.COMPLETE, "1")]) == [1]
    assert handle.status() is JobState.SUCCEEDED
    assert broker.fetch("default", "w2", 10) == []  # the copy finds it settled: dropped


def test_an_app_rejects_a_negative_retention() -> None:
    from stem.errors import ConfigError

    with pytest.raises(ConfigError, match="result_ttl_s"):
        Stem("redis://localhost:1", result_ttl_s=-1)
    app = Stem("redis://localhost:1")
    with pytest.raises(ConfigError, match="keep_result_s"):
        app.task(name="t", keep_result_s=-5)(lambda: None)


def test_a_signed_job_keeps_its_task_name_not_one_from_its_arguments(
    redis_url: str, namespace: str
) -> None:
    app = Stem(redis_url, namespace=namespace, signing_keys={"k1": b"0123456789abcdef01"})
    try:
        handle = app.enqueue("my.signed.task", [{"task": "not-this"}])
        _run(app.broker)
        record = handle.info()
        assert record is not None
        assert (record.task, record.deliveries, record.envelope) == ("my.signed.task", 1, "")
    finally:
        app.close()


def test_an_app_that_keeps_no_results_still_sees_a_revoked_job_as_revoked(
    redis_url: str, namespace: str
) -> None:
    app = Stem(redis_url, namespace=namespace, result_ttl_s=0)
    try:
        handle = app.enqueue("some.task")
        assert app.broker.revoke("default", handle.id) == (1, "queued")
        assert handle.status() is JobState.REVOKED
        assert app.broker.fetch("default", "w1", 10) == []  # its entry is dropped, not run
        _run(app.broker)
        assert app.broker.client.exists(app.broker.keys.queue("default").job(handle.id)) == 1
    finally:
        app.close()
