"""A full worker's settles bring its next jobs back in the same round trip (settle.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import trio

from stem import Stem
from stem.broker import Delivery, Settlement
from stem.errors import BrokerUnavailable
from stem.worker import settle as settle_module
from stem.worker.core import Worker, WorkerOptions
from tests.apps import jobs


async def test_a_full_worker_gets_its_next_jobs_with_the_settle_that_frees_their_slots(
    japp: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    handles = jobs.add.enqueue_many([(i, i) for i in range(4)])
    broker = japp.broker
    fetched: list[int] = []  # jobs per plain fetch
    with_settles: list[tuple[int, int]] = []  # (settled, fetched) per combined call
    real_fetch, real_combined = broker.fetch, broker.settle_then_fetch

    def fetch(*args: Any, **kwargs: Any) -> list[Delivery]:
        got = real_fetch(*args, **kwargs)
        fetched.append(len(got))
        return got

    def combined(settlements: Sequence[Settlement], *args: Any, **kwargs: Any) -> Any:
        replies, got = real_combined(settlements, *args, **kwargs)
        with_settles.append((len(settlements), len(got)))
        return replies, got

    monkeypatch.setattr(broker, "fetch", fetch)
    monkeypatch.setattr(broker, "settle_then_fetch", combined)
    # One slot: the worker is full from its first fetch until the queue is empty.
    options = WorkerOptions(concurrency=1, prefetch=0, burst=True, name="full")
    with trio.fail_after(30):
        await Worker(japp, options).serve()
    assert [h.result(timeout_s=0) for h in handles] == [0, 2, 4, 6]
    # Job 1 came with a fetch, jobs 2-4 each with the settle of the one before; the
    # last settle's fetch found the queue empty.
    assert sum(fetched) == 1
    assert with_settles == [(1, 1), (1, 1), (1, 1), (1, 0)]


async def test_a_worker_with_room_settles_without_fetching(
    japp: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    handles = jobs.add.enqueue_many([(i, 1) for i in range(3)])
    combined: list[int] = []
    real = japp.broker.settle_then_fetch

    def counting(settlements: Sequence[Settlement], *args: Any, **kwargs: Any) -> Any:
        combined.append(len(settlements))
        return real(settlements, *args, **kwargs)

    monkeypatch.setattr(japp.broker, "settle_then_fetch", counting)
    options = WorkerOptions(concurrency=10, prefetch=10, burst=True, name="roomy")
    with trio.fail_after(30):
        await Worker(japp, options).serve()
    assert [h.result(timeout_s=0) for h in handles] == [1, 2, 3]
    assert combined == []  # never full: the fetch loop fetches, settles only settle


async def test_a_settle_retried_after_a_lost_reply_fetches_nothing(
    japp: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The combined call's reply may be lost after Redis ran it: the jobs it fetched are
    # then pending for this worker but unknown to it (the reclaimer takes them back
    # after their lease). Retrying with another fetch would strand a batch per attempt
    # for as long as the outage lasts; the retry settles only.
    handles = jobs.add.enqueue_many([(i, i) for i in range(3)])
    broker = japp.broker
    calls: list[str] = []
    real_settle, real_combined = broker.settle, broker.settle_then_fetch

    def settle(settlements: Sequence[Settlement]) -> list[int]:
        calls.append("settle")
        return real_settle(settlements)

    def combined(settlements: Sequence[Settlement], *args: Any, **kwargs: Any) -> Any:
        if "lost" not in calls:
            calls.append("lost")
            raise BrokerUnavailable("connection lost (test)")
        calls.append("combined")
        return real_combined(settlements, *args, **kwargs)

    monkeypatch.setattr(broker, "settle", settle)
    monkeypatch.setattr(broker, "settle_then_fetch", combined)
    monkeypatch.setattr(settle_module, "RETRY_S", 0.01)
    options = WorkerOptions(concurrency=1, prefetch=0, burst=True, name="lossy")
    with trio.fail_after(30):
        await Worker(japp, options).serve()
    assert [h.result(timeout_s=0) for h in handles] == [0, 2, 4]
    assert calls[:2] == ["lost", "settle"]  # the retry of the same batch: no fetch
    assert "combined" in calls[2:]  # the next full settles fetch again
