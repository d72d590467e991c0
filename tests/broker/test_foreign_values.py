"""Every broker script meets values stem did not write and never fails half-way.

A Lua script that errors after its first write keeps what it wrote (Redis does not roll
back), so each settle path reads and checks a job's record before writing. These tests
plant such values in the session's real Redis and call the broker directly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
import redis

from stem import Stem
from stem.broker import Delivery, NewJob, RedisBroker, Settlement
from stem.broker.connection import Faults
from stem.errors import BrokerRefused, BrokerUnavailable, ConfigError, JobFailed, PayloadError
from stem.outcome import Verdict
from stem.states import JobState
from tests.broker.contract import Q, job


def raw(broker: RedisBroker) -> Any:
    return broker.client


def delivered(broker: RedisBroker, n: int, consumer: str = "c") -> list[Delivery]:
    jobs = [job() for _ in range(n)]
    broker.enqueue(Q, jobs)
    got = broker.fetch(Q, consumer, n)
    assert [d.job_id for d in got] == [j.id for j in jobs]
    return got


def reasons(broker: RedisBroker) -> list[str]:
    return [e.reason for e in broker.dead_entries(Q)]


def test_a_retry_of_a_job_whose_attempt_is_garbled_dead_letters_it_instead_of_losing_it(
    broker: RedisBroker,
) -> None:
    [d] = delivered(broker, 1)
    raw(broker).hset(broker.keys.queue(Q).job(d.job_id or ""), "attempt", "x")
    [flag] = broker.settle([Settlement(d, Verdict.RETRY, '{"e": 1}', delay_ms=10)])
    assert (flag, reasons(broker)) == (0, ["corrupt-record"])
    record = broker.job(Q, d.job_id or "")
    assert record is not None and record.state is JobState.DEAD
    assert broker.queue_stats(Q).pending == 0


def test_completing_a_batch_where_one_record_was_overwritten_stores_the_others(
    broker: RedisBroker,
) -> None:
    got = delivered(broker, 3)
    raw(broker).set(broker.keys.queue(Q).job(got[1].job_id or ""), "not a hash")
    flags = broker.settle([Settlement(d, Verdict.COMPLETE, "42") for d in got])
    assert flags == [1, 0, 1]
    assert [broker.job(Q, d.job_id or "") is not None for d in (got[0], got[2])] == [True] * 2
    assert reasons(broker) == ["corrupt-record"]
    error = json.loads(broker.dead_entries(Q)[0].error)
    assert (error["type"], error["result"]) == ("CorruptRecord", "42")


def test_burying_a_job_whose_record_is_not_a_hash_still_acks_and_dead_letters_it(
    broker: RedisBroker,
) -> None:
    [d] = delivered(broker, 1)
    raw(broker).set(broker.keys.queue(Q).job(d.job_id or ""), "x")
    settlement = Settlement(d, Verdict.BURY, "{}", reason="not-retryable")
    assert broker.settle([settlement]) == [1]
    assert (reasons(broker), broker.queue_stats(Q).pending) == (["not-retryable"], 0)


def test_the_reclaimer_dead_letters_a_job_whose_delivery_count_is_garbled(
    broker: RedisBroker,
) -> None:
    [d] = delivered(broker, 1)
    raw(broker).hset(broker.keys.queue(Q).job(d.job_id or ""), "deliveries", "1e400")
    stats = broker.reclaim(Q, "reclaimer", min_idle_ms=0, max_deliveries=5)
    assert (stats.requeued, stats.dead_lettered, reasons(broker)) == (0, 1, ["corrupt-record"])


def test_handing_back_a_job_with_an_unknown_state_dead_letters_only_that_job(
    broker: RedisBroker,
) -> None:
    got = delivered(broker, 2)
    raw(broker).hset(broker.keys.queue(Q).job(got[0].job_id or ""), "state", "\xff-odd")
    assert broker.release(got, undo_delivery=True) == 1
    assert reasons(broker) == ["corrupt-record"]
    assert [d.job_id for d in broker.fetch(Q, "c2", 5)] == [got[1].job_id]


def test_promoting_a_delayed_job_with_a_bad_priority_dead_letters_it_and_promotes_the_rest(
    broker: RedisBroker,
) -> None:
    jobs = [job(eta_ms=1) for _ in range(3)]  # due at once, but through the delayed set
    for j in jobs:
        broker.enqueue(Q, [NewJob(j.id, j.envelope, 0, 2**40, "", 60)])
        raw(broker).zadd(broker.keys.queue(Q).delayed, {j.id: 1})
    raw(broker).hset(broker.keys.queue(Q).job(jobs[1].id), "prio", "high")
    promoted, _ = broker.promote_due(Q)
    assert (promoted, reasons(broker)) == (2, ["corrupt-record"])


def test_a_far_future_score_in_exponent_form_is_read_as_a_capped_wait(
    broker: RedisBroker,
) -> None:
    j = job()
    broker.enqueue(Q, [NewJob(j.id, j.envelope, 0, 2**40, "", 60)])
    raw(broker).zadd(broker.keys.queue(Q).delayed, {j.id: 1.79e21})
    promoted, wait_ms = broker.promote_due(Q)
    assert promoted == 0 and 0 < wait_ms <= 10 * 365 * 86_400 * 1000


def test_a_job_record_with_values_stem_did_not_write_reads_without_error(
    broker: RedisBroker,
) -> None:
    [d] = delivered(broker, 1)
    key = broker.keys.queue(Q).job(d.job_id or "")
    raw(broker).hset(key, mapping={"state": "??", "attempt": "1.5e3", "result": b"\xff"})
    record = broker.job(Q, d.job_id or "")
    assert record is not None
    assert (record.state, record.attempt, record.result) == (JobState.DEAD, 1500, "\\xff")


@pytest.mark.parametrize(
    "delay", [math.inf, math.nan, -1.0, 10 * 365 * 86_400 + 1, 1_800_000_000_000_000_000]
)
def test_a_delay_outside_zero_to_ten_years_is_refused_before_anything_is_written(
    app: Stem, delay: float
) -> None:
    with pytest.raises(ConfigError, match="delay_s must be a number from 0 to"):
        app.enqueue("some.task", delay_s=delay)
    assert app.broker.queue_stats("default").delayed == 0


def test_an_eta_more_than_ten_years_ahead_is_refused(app: Stem) -> None:
    eta = dt.datetime.now(dt.UTC) + dt.timedelta(days=3660)
    with pytest.raises(ConfigError, match="at most ten years ahead"):
        app.enqueue("some.task", eta=eta)


def test_faults_wait_out_a_short_read_only_spell_then_refuse() -> None:
    faults = Faults("redis://h:1/0", readonly_grace_s=0.0)
    assert isinstance(faults.classify(redis.ReadOnlyError("READONLY x")), BrokerRefused)
    faults = Faults("redis://h:1/0", readonly_grace_s=60.0)
    assert isinstance(faults.classify(redis.ReadOnlyError("READONLY x")), BrokerUnavailable)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (redis.ConnectionError("reset"), BrokerUnavailable),
        (redis.TimeoutError("slow"), BrokerUnavailable),
        (redis.BusyLoadingError("LOADING"), BrokerUnavailable),
        (redis.ResponseError("OOM command not allowed"), BrokerUnavailable),
        # What redis-py really raises: the parser strips the code it maps to a class.
        (
            redis.exceptions.OutOfMemoryError("command not allowed when used memory"),
            BrokerUnavailable,
        ),
        (
            redis.exceptions.TryAgainError("Multiple keys request during rehashing"),
            BrokerUnavailable,
        ),
        (redis.exceptions.MasterDownError("Link with MASTER is down"), BrokerUnavailable),
        (redis.ResponseError("WRONGTYPE Operation against a key"), BrokerRefused),
        (redis.ResponseError("NOPERM this user has no permissions"), BrokerRefused),
        (redis.ResponseError("ERR user_script:1: Script attempted to access"), BrokerRefused),
        (redis.AuthenticationError("invalid username-password pair"), BrokerRefused),
    ],
)
def test_redis_failures_are_sorted_by_whether_waiting_heals_them(
    error: redis.RedisError, kind: type[Exception]
) -> None:
    assert type(Faults("redis://u:secret@h:1/0").classify(error)) is kind
    assert "secret" not in str(Faults("redis://u:secret@h:1/0").classify(error))


def test_dead_letter_entries_with_bytes_that_are_not_utf8_list_without_error(
    broker: RedisBroker,
) -> None:
    raw(broker).xadd(broker.keys.queue(Q).dead, {b"id": b"\xff", b"ts": b"1e3", b"env": b"\xfe"})
    [entry] = broker.dead_entries(Q)
    assert (entry.job_id, entry.envelope, entry.ts_ms) == ("\\xff", "\\xfe", 1000)
    assert broker.dead_entry(Q, "\\xff") == entry


def test_a_heartbeat_record_that_is_not_json_is_skipped(broker: RedisBroker) -> None:
    broker.heartbeat("real", {"id": "real"}, 10)
    raw(broker).set(broker.keys.worker("ghost"), b"\xff not json")
    raw(broker).zadd(broker.keys.workers, {"ghost": 1})
    assert [w["id"] for w in broker.workers()] == ["real"]


def test_a_stored_result_that_is_not_json_is_a_payload_error_not_a_crash(app: Stem) -> None:
    handle = app.enqueue("some.task")
    key = app.broker.keys.queue("default").job(handle.id)
    raw(app.broker).hset(key, mapping={"state": "succeeded", "result": "{not json"})
    with pytest.raises(PayloadError, match="stored result is not JSON"):
        handle.result(timeout_s=1)
    raw(app.broker).hset(key, mapping={"state": "failed", "error": "plain words"})
    with pytest.raises(JobFailed, match="plain words"):
        handle.result(timeout_s=1)
