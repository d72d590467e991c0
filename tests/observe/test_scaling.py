"""The scaling advice on synthetic loads (stem.observe.scaling is pure arithmetic)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from stem.observe.scaling import Advice, Load, advise

BASE = Load(
    window_s=10.0, workers=2, processed_per_s=20.0, backlog_before=0, backlog_after=0,
    utilisation=1.0,
)  # fmt: skip


def load(**overrides: Any) -> Load:
    """``BASE`` (10 s, 2 fully busy workers completing 20 jobs/s, no backlog), changed."""
    return dataclasses.replace(BASE, **overrides)


def test_a_saturated_pool_keeping_up_needs_headroom_only() -> None:
    advice = advise(load(), headroom=0.2)
    # 20 jobs/s arrive, each worker does 10/s: 20 * 1.2 / 10 = 2.4 -> 3
    assert (advice.arrival_per_s, advice.capacity_per_worker_per_s) == (20.0, 10.0)
    assert (advice.recommended_workers, advice.reason) == (3, "scale up: 2 -> 3 workers")


def test_a_growing_backlog_counts_as_arrivals_and_must_drain_in_time() -> None:
    advice = advise(load(backlog_before=100, backlog_after=300), drain_s=60, headroom=0)
    # arrivals 20 + 200/10 = 40/s; plus 300/60 = 5/s to drain; 45 / 10 -> 5 workers
    assert (advice.arrival_per_s, advice.recommended_workers) == (40.0, 5)
    assert advice.drain_eta_s is None  # not draining at all at this rate


def test_a_half_busy_pool_has_twice_the_capacity_it_shows() -> None:
    advice = advise(load(processed_per_s=10.0, utilisation=0.5), headroom=0)
    assert (advice.capacity_per_worker_per_s, advice.recommended_workers) == (10.0, 1)
    assert advice.reason == "room to scale down: 2 -> 1 workers"


def test_a_shrinking_backlog_has_a_drain_eta() -> None:
    advice = advise(load(backlog_before=200, backlog_after=100), headroom=0, drain_s=100)
    # arrivals 20 - 10 = 10/s; net drain 10/s -> 100 jobs in 10 s
    assert (advice.arrival_per_s, advice.drain_eta_s) == (10.0, 10.0)
    assert advice.recommended_workers == 2  # (10 + 100/100) / 10 = 1.1 -> 2


def test_no_workers_with_waiting_jobs_needs_at_least_one() -> None:
    advice = advise(load(workers=0, processed_per_s=0, backlog_after=5, utilisation=0))
    assert advice == Advice(0.5, None, 1, None, "no live workers: jobs are waiting")


def test_no_workers_and_no_jobs_needs_none() -> None:
    advice = advise(load(workers=0, processed_per_s=0, utilisation=0))
    assert (advice.recommended_workers, advice.reason) == (0, "no live workers")


def test_idle_workers_are_left_as_they_are() -> None:
    advice = advise(load(processed_per_s=0, utilisation=0))
    assert (advice.recommended_workers, advice.reason) == (2, "idle: nothing to measure")


def test_busy_workers_that_completed_nothing_give_no_estimate() -> None:
    advice = advise(load(processed_per_s=0, utilisation=1, backlog_before=9, backlog_after=9))
    assert advice.recommended_workers is None
    assert "longer --interval" in advice.reason


@pytest.mark.parametrize("bad", [{"window_s": 0}, {"drain_s": 0}, {"headroom": -1}])
def test_nonsense_parameters_are_refused(bad: dict[str, float]) -> None:
    window = bad.get("window_s", 10.0)
    with pytest.raises(ValueError, match="must be"):
        advise(
            load(window_s=window),
            drain_s=bad.get("drain_s", 60.0),
            headroom=bad.get("headroom", 0.2),
        )
