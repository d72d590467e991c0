"""Backoff delays and the restart intensity, as pure logic."""

from __future__ import annotations

import math
import random

import pytest

from supervisor import Backoff, RestartIntensity, SupervisorConfigError
from supervisor.backoff import BackoffTracker, IntensityWindow


def test_delays_grow_by_the_factor_until_the_cap() -> None:
    backoff = Backoff(initial_s=0.5, factor=2.0, cap_s=5.0, jitter=0.0)

    delays = [backoff.delay_s(n) for n in range(7)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_jittered_delays_lie_between_the_reduced_and_the_full_delay() -> None:
    backoff = Backoff(initial_s=1.0, factor=3.0, cap_s=100.0, jitter=0.25)
    rng = random.Random(7)

    for failures in range(6):
        base = backoff.base_delay_s(failures)
        samples = [backoff.delay_s(failures, rng) for _ in range(200)]
        assert all(base * 0.75 <= s <= base for s in samples)
        # Jitter spreads the delays over most of the allowed range.
        assert max(samples) - min(samples) > base * 0.2


def test_a_huge_failure_count_gives_the_cap_without_overflow() -> None:
    backoff = Backoff(initial_s=0.1, factor=10.0, cap_s=60.0, jitter=0.0)

    assert backoff.delay_s(10_000) == 60.0


def test_a_factor_of_one_keeps_the_initial_delay() -> None:
    assert Backoff(initial_s=2.0, factor=1.0, jitter=0.0).delay_s(50) == 2.0


def test_the_tracker_grows_delays_across_consecutive_failures() -> None:
    tracker = BackoffTracker(Backoff(initial_s=1.0, factor=2.0, cap_s=8.0, jitter=0.0))

    delays = [tracker.next_delay_s(ran_for_s=0.1) for _ in range(5)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_a_run_longer_than_reset_after_starts_the_delays_from_the_initial_one() -> None:
    backoff = Backoff(initial_s=1.0, factor=2.0, cap_s=8.0, jitter=0.0, reset_after_s=30.0)
    tracker = BackoffTracker(backoff)
    for _ in range(3):
        tracker.next_delay_s(ran_for_s=1.0)

    short_run_delay = tracker.next_delay_s(ran_for_s=29.9)
    stable_run_delay = tracker.next_delay_s(ran_for_s=30.0)
    next_delay = tracker.next_delay_s(ran_for_s=0.5)

    assert (short_run_delay, stable_run_delay, next_delay) == (8.0, 1.0, 2.0)


def test_the_intensity_allows_max_restarts_within_the_window_and_trips_on_one_more() -> None:
    window = IntensityWindow(RestartIntensity(max_restarts=3, within_s=10.0))

    verdicts = [window.record(now) for now in (0.0, 1.0, 2.0, 3.0)]

    assert verdicts == [False, False, False, True]


def test_restarts_older_than_the_window_are_forgotten() -> None:
    window = IntensityWindow(RestartIntensity(max_restarts=2, within_s=10.0))

    verdicts = [window.record(now) for now in (0.0, 5.0, 10.0, 15.0, 20.0, 21.0)]

    assert verdicts == [False, False, False, False, False, True]


def test_zero_max_restarts_gives_up_at_the_first_restart() -> None:
    window = IntensityWindow(RestartIntensity(max_restarts=0, within_s=1.0))

    assert window.record(100.0) is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0},
        {"initial_s": -1},
        {"initial_s": math.nan},
        {"factor": 0.5},
        {"cap_s": 0.1, "initial_s": 1.0},
        {"cap_s": math.inf},
        {"jitter": -0.1},
        {"jitter": 1.5},
        {"reset_after_s": 0},
    ],
)
def test_invalid_backoff_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(SupervisorConfigError):
        Backoff(**kwargs)


@pytest.mark.parametrize("kwargs", [{"max_restarts": -1}, {"within_s": 0}, {"within_s": math.inf}])
def test_invalid_intensities_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(SupervisorConfigError):
        RestartIntensity(**kwargs)  # type: ignore[arg-type]
