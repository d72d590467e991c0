"""Which ticks are due at an instant: missed-run policies, jitter, order, the beat plan."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from stem.schedule import (
    Cron,
    Entry,
    Interval,
    MissedPolicy,
    Once,
    due_ticks,
    fire_at_ms,
    jitter_ms,
    plan_beat,
    plan_entry,
)
from stem.schedule.wallclock import from_ms, to_ms

from .helpers import utc

T = utc(2024, 5, 1, 12)  # a tick of every entry below that runs each minute
T_MS = to_ms(T)
MIN_MS = 60_000


def every_minute(
    missed: MissedPolicy = MissedPolicy.SKIP,
    *,
    jitter_s: float = 0.0,
    grace_s: float = 10.0,
    enabled: bool = True,
) -> Entry:
    return Entry(
        name="report",
        task="app.report",
        schedule=Interval(60),
        missed=missed,
        jitter_s=jitter_s,
        grace_s=grace_s,
        enabled=enabled,
    )


def test_a_tick_fires_when_it_is_reached() -> None:
    assert due_ticks(every_minute(), T_MS - MIN_MS, T) == [T_MS]


def test_a_tick_is_not_due_before_its_instant() -> None:
    assert due_ticks(every_minute(), T_MS - MIN_MS, T - timedelta(milliseconds=1)) == []


def test_a_tick_already_fired_does_not_fire_again() -> None:
    assert due_ticks(every_minute(), T_MS, T + timedelta(seconds=1)) == []


def test_a_tick_late_by_less_than_the_grace_still_fires() -> None:
    assert due_ticks(every_minute(grace_s=10), T_MS - MIN_MS, T + timedelta(seconds=9)) == [T_MS]


def test_a_slow_beat_fires_each_tick_within_the_grace_in_order() -> None:
    entry = Entry(name="fast", task="t", schedule=Interval(2), grace_s=5)

    assert due_ticks(entry, T_MS - 2000, T + timedelta(seconds=4.5)) == [
        T_MS,
        T_MS + 2000,
        T_MS + 4000,
    ]


def test_skip_fires_nothing_that_was_missed_during_downtime() -> None:
    last_before_downtime = T_MS - 60 * MIN_MS

    assert (
        due_ticks(every_minute(MissedPolicy.SKIP), last_before_downtime, T + timedelta(seconds=30))
        == []
    )


def test_skip_after_downtime_fires_only_the_tick_due_right_now() -> None:
    last_before_downtime = T_MS - 60 * MIN_MS

    assert due_ticks(
        every_minute(MissedPolicy.SKIP), last_before_downtime, T + timedelta(seconds=2)
    ) == [T_MS]


def test_run_once_fires_exactly_the_latest_missed_tick_after_downtime() -> None:
    entry = every_minute(MissedPolicy.RUN_ONCE)
    last_before_downtime = T_MS - 60 * MIN_MS

    plan = plan_entry(entry, last_before_downtime, T + timedelta(seconds=30))

    assert [(d.tick_ms, d.catch_up) for d in plan.due] == [(T_MS, True)]
    assert plan.wake_at_ms == T_MS + MIN_MS


def test_run_once_does_not_catch_up_twice() -> None:
    entry = every_minute(MissedPolicy.RUN_ONCE)

    assert due_ticks(entry, T_MS, T + timedelta(seconds=40)) == []


def test_run_once_needs_no_catch_up_when_a_tick_is_due_right_now() -> None:
    entry = every_minute(MissedPolicy.RUN_ONCE)
    last_before_downtime = T_MS - 60 * MIN_MS

    assert due_ticks(entry, last_before_downtime, T + timedelta(seconds=2)) == [T_MS]


def test_a_first_start_has_no_backlog_to_catch_up() -> None:
    for policy in MissedPolicy:
        entry = every_minute(policy)

        assert (due_ticks(entry, None, T + timedelta(seconds=2)), policy) == ([T_MS], policy)
        assert (due_ticks(entry, None, T + timedelta(seconds=30)), policy) == ([], policy)


def test_a_disabled_entry_never_fires_nor_wakes_beat() -> None:
    plan = plan_entry(every_minute(enabled=False), T_MS - MIN_MS, T)

    assert (plan.due, plan.wake_at_ms) == ((), None)


def test_a_one_off_fires_once_and_then_never_again() -> None:
    entry = Entry(name="launch", task="t", schedule=Once(T))

    assert due_ticks(entry, None, T) == [T_MS]
    assert plan_entry(entry, T_MS, T + timedelta(days=1)) == plan_entry(entry, T_MS, T)
    assert plan_entry(entry, T_MS, T).due == ()
    assert plan_entry(entry, T_MS, T).wake_at_ms is None


def test_a_missed_one_off_follows_its_missed_policy() -> None:
    skip = Entry(name="launch", task="t", schedule=Once(T))
    run_once = Entry(name="launch", task="t", schedule=Once(T), missed=MissedPolicy.RUN_ONCE)
    long_before = T_MS - 60 * MIN_MS
    an_hour_late = T + timedelta(hours=1)

    assert due_ticks(skip, long_before, an_hour_late) == []
    assert due_ticks(run_once, long_before, an_hour_late) == [T_MS]


def test_catching_up_after_a_week_of_downtime_does_not_walk_every_missed_tick() -> None:
    # About 600 000 ticks were missed; walking them would take minutes (and hit the timeout).
    every_second = Entry(
        name="pulse",
        task="t",
        schedule=Cron("* * * * * *"),
        missed=MissedPolicy.RUN_ONCE,
        grace_s=0.5,
    )
    a_week_ago = T_MS - 7 * 24 * 3600 * 1000

    # At 30.6 s the 30 s tick is 0.6 s late (missed) and the 31 s tick is not due yet.
    assert due_ticks(every_second, a_week_ago, T + timedelta(seconds=30.6)) == [T_MS + 30_000]


def test_jitter_is_the_same_for_every_replica_even_across_processes() -> None:
    # str hashes are salted per process; the jitter must not depend on them.
    code = "from stem.schedule import jitter_ms; print(jitter_ms('report', 1714564800000, 300))"
    other_process = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        timeout=60,
    )

    assert int(other_process.stdout) == jitter_ms("report", 1714564800000, 300)


def test_jitter_stays_within_zero_and_jitter_s() -> None:
    offsets = [jitter_ms("report", T_MS + k * MIN_MS, 30) for k in range(5000)]

    assert (min(offsets) >= 0, max(offsets) < 30_000) == (True, True)
    # Spread across the range, roughly uniform: the mean is near the middle.
    assert abs(sum(offsets) / len(offsets) - 15_000) < 600
    assert (min(offsets) < 300, max(offsets) > 29_700) == (True, True)


def test_jitter_differs_between_entries_that_share_a_tick() -> None:
    offsets = {jitter_ms(f"entry-{i}", T_MS, 60) for i in range(100)}

    assert len(offsets) > 95


def test_no_jitter_fires_on_the_tick() -> None:
    assert fire_at_ms(every_minute(), T_MS) == T_MS


def test_a_jittered_tick_fires_at_its_fire_time_not_at_its_tick() -> None:
    entry = every_minute(jitter_s=30)
    fire_ms = fire_at_ms(entry, T_MS)
    assert T_MS < fire_ms < T_MS + 30_000

    before = plan_entry(entry, T_MS - MIN_MS, from_ms(fire_ms - 1))
    on_time = plan_entry(entry, T_MS - MIN_MS, from_ms(fire_ms))

    assert (before.due, before.wake_at_ms) == ((), fire_ms)
    assert [d.fire_at_ms for d in on_time.due] == [fire_ms]


def test_ticks_of_one_entry_fire_in_tick_order_even_when_jitter_swaps_their_fire_times() -> None:
    entry = Entry(name="swap", task="t", schedule=Interval(1), jitter_s=5)
    # Find two consecutive ticks whose jitter puts the later one first.
    tick = next(
        t
        for t in range(T_MS, T_MS + 1000 * 1000, 1000)
        if fire_at_ms(entry, t) > fire_at_ms(entry, t + 1000)
    )
    first_fire, second_fire = fire_at_ms(entry, tick), fire_at_ms(entry, tick + 1000)

    waiting = plan_entry(entry, tick - 1000, from_ms(second_fire))
    both = plan_entry(entry, tick - 1000, from_ms(first_fire))

    assert (waiting.due, waiting.wake_at_ms) == ((), first_fire)
    assert [d.tick_ms for d in both.due][:2] == [tick, tick + 1000]


def test_beat_plan_orders_due_ticks_by_fire_time_and_wakes_at_the_earliest_next_one() -> None:
    minutely = Entry(name="minutely", task="t", schedule=Interval(60))
    hourly = Entry(name="hourly", task="t", schedule=Cron("0 * * * *"))
    later = Entry(name="later", task="t", schedule=Once(T + timedelta(seconds=5)), jitter_s=2)
    now = T + timedelta(seconds=9)

    plan = plan_beat(
        [minutely, hourly, later], {"minutely": T_MS - MIN_MS, "hourly": T_MS - 3_600_000}, now
    )

    assert [(d.entry.name, d.tick_ms) for d in plan.due] == [
        ("hourly", T_MS),
        ("minutely", T_MS),
        ("later", T_MS + 5000),
    ]
    assert plan.wake_at_ms == T_MS + MIN_MS
    assert plan.due[0].job_id == f"beat:hourly:{T_MS}"


def test_beat_plan_has_no_wake_up_when_nothing_will_fire_again() -> None:
    done = Entry(name="done", task="t", schedule=Once(T))

    assert plan_beat([done], {"done": T_MS}, T + timedelta(days=1)).wake_at_ms is None
