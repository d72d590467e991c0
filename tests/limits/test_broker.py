"""Limits at the broker: a throttled job keeps its counts, slots are fenced by delivery,
the limiter releases waiting jobs FIFO."""

from __future__ import annotations

from stem import Stem
from stem.broker import RedisBroker, Settlement
from stem.outcome import Verdict
from stem.states import JobState


def one_slot_app(app: Stem) -> object:
    @app.task(concurrency_limit=1, name="one")
    async def one(i: int) -> int:
        return i

    return one


def test_a_throttled_job_waits_with_its_counts_unchanged_and_runs_once_released(
    app: Stem, broker: RedisBroker
) -> None:
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    first = app.enqueue("one", (1,))
    second = app.enqueue("one", (2,))

    [held] = broker.fetch("default", "c1", 10, specs)
    waiting = broker.job("default", second.id)

    assert held.job_id == first.id
    assert waiting is not None
    assert (waiting.state, waiting.attempt, waiting.deliveries) == (JobState.THROTTLED, 0, 0)
    assert broker.limit_round("default", specs).released == 0  # the slot is still held
    assert broker.fetch("default", "c1", 10, specs) == []

    broker.settle([Settlement(held, Verdict.COMPLETE, "1")])
    assert broker.limit_round("default", specs).released == 1
    [run] = broker.fetch("default", "c1", 10, specs)

    assert (run.job_id, run.attempt, run.deliveries) == (second.id, 0, 1)


def test_a_stale_holder_cannot_free_the_slot_of_the_jobs_new_delivery(
    app: Stem, broker: RedisBroker
) -> None:
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    job = app.enqueue("one", (1,))
    [stale] = broker.fetch("default", "dead-worker", 10, specs)
    broker.reclaim("default", "reclaimer", min_idle_ms=0, max_deliveries=10)  # lease over
    [fresh] = broker.fetch("default", "live-worker", 10, specs)
    assert fresh.job_id == job.id and fresh.entry_id != stale.entry_id

    broker.settle([Settlement(stale, Verdict.COMPLETE, "1")])  # the stale worker finishes
    other = app.enqueue("one", (2,))
    got = broker.fetch("default", "live-worker", 10, specs)

    assert got == []  # the new delivery still holds the slot
    record = broker.job("default", other.id)
    assert record is not None and record.state is JobState.THROTTLED


def test_the_limiter_frees_a_slot_whose_delivery_is_gone(app: Stem, broker: RedisBroker) -> None:
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    app.enqueue("one", (1,))
    [held] = broker.fetch("default", "c1", 10, specs)
    qk = broker.keys.queue("default")
    broker.client.xack(qk.stream(0), "workers", held.entry_id)  # lost without a settle
    broker.client.xdel(qk.stream(0), held.entry_id)
    waiting = app.enqueue("one", (2,))
    assert broker.fetch("default", "c1", 10, specs) == []

    done = broker.limit_round("default", specs)

    assert (done.slots_freed, done.released) == (1, 1)
    [run] = broker.fetch("default", "c1", 10, specs)
    assert run.job_id == waiting.id


def test_jobs_of_one_key_are_released_in_the_order_they_were_enqueued(
    app: Stem, broker: RedisBroker
) -> None:
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    handles = [app.enqueue("one", (i,)) for i in range(6)]
    order = []
    for _ in range(6):
        broker.limit_round("default", specs)
        [d] = broker.fetch("default", "c1", 10, specs)
        order.append(d.job_id)
        broker.settle([Settlement(d, Verdict.COMPLETE, "1")])

    assert order == [h.id for h in handles]


def test_without_definitions_a_job_with_limits_is_delivered_as_today(
    app: Stem, broker: RedisBroker
) -> None:
    one_slot_app(app)
    app.enqueue("one", (1,))
    app.enqueue("one", (2,))

    assert len(broker.fetch("default", "c1", 10)) == 2


def test_a_dead_lettered_job_keeps_its_limits_and_frees_its_slot_and_a_replay_keeps_them(
    app: Stem, broker: RedisBroker
) -> None:
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    job = app.enqueue("one", (1,))
    [held] = broker.fetch("default", "c1", 10, specs)

    broker.settle([Settlement(held, Verdict.BURY, "{}", reason="not-retryable")])
    other = app.enqueue("one", (2,))
    [ran] = broker.fetch("default", "c1", 10, specs)  # the slot was given back
    broker.settle([Settlement(ran, Verdict.COMPLETE, "2")])
    [entry] = broker.dead_entries("default")
    broker.client.delete(broker.keys.queue("default").job(job.id))  # the record expired
    broker.replay("default", [entry.entry_id])

    assert ran.job_id == other.id
    limits = broker.client.hget(broker.keys.queue("default").job(job.id), "limits")
    assert limits == b"one=one"


def test_a_waiting_job_whose_record_vanished_goes_to_the_workers_to_be_dead_lettered(
    app: Stem, broker: RedisBroker
) -> None:
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    app.enqueue("one", (1,))
    lost = app.enqueue("one", (2,))
    [held] = broker.fetch("default", "c1", 10, specs)
    broker.client.delete(broker.keys.queue("default").job(lost.id))
    broker.settle([Settlement(held, Verdict.COMPLETE, "1")])

    broker.limit_round("default", specs)
    [raw] = broker.fetch("default", "c1", 10, specs)

    assert (raw.job_id, raw.envelope, raw.raw) == (lost.id, None, {"id": lost.id})


def test_a_queue_is_not_drained_while_a_job_waits_for_a_limit(
    app: Stem, broker: RedisBroker
) -> None:
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    app.enqueue("one", (1,))
    app.enqueue("one", (2,))
    [held] = broker.fetch("default", "c1", 10, specs)  # the second is throttled
    broker.settle([Settlement(held, Verdict.COMPLETE, "1")])
    assert broker.queue_stats("default").ready + broker.queue_stats("default").pending == 0

    assert broker.queue_drained("default") is False  # waiting for the slot
    assert broker.limit_round("default", specs).released == 1
    assert broker.queue_drained("default") is False  # ready again
    [run] = broker.fetch("default", "c1", 10, specs)
    assert broker.queue_drained("default") is False  # held
    broker.settle([Settlement(run, Verdict.COMPLETE, "2")])
    assert broker.queue_drained("default") is True


def test_a_waiting_job_whose_record_expired_reaches_the_workers_and_the_queue_keeps_working(
    app: Stem, broker: RedisBroker
) -> None:
    # Found in review: the limiter handed such a job to p0 with a bare XADD; when p0 did
    # not exist yet that made a stream without the consumer group, and every fetch of the
    # queue failed (NOGROUP) from then on.
    one_slot_app(app)
    specs = tuple(app.limit_specs().values())
    app.enqueue("one", (1,), priority=5)
    revoked = app.enqueue("one", (2,), priority=5)
    [held] = broker.fetch("default", "c1", 10, specs)  # the second waits for the slot
    assert broker.revoke("default", revoked.id)[0] == 1
    broker.client.delete(broker.keys.queue("default").job(revoked.id))  # as its TTL would
    broker.settle([Settlement(held, Verdict.COMPLETE, "1")])

    broker.limit_round("default", specs)  # hands it to p0, which did not exist
    later = app.enqueue("one", (3,))
    got = broker.fetch("default", "c1", 10, specs)

    assert {(d.job_id, d.envelope is None) for d in got} == {(revoked.id, True), (later.id, False)}
