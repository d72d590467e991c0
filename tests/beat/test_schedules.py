"""Interval, cron and one-off schedules: the ticks every replica computes alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stem.errors import ConfigError
from stem.schedule import Cron, Entry, Interval, Once, next_ticks

from .helpers import local, ticks_between, utc


def test_interval_ticks_are_anchored_at_the_epoch_by_default() -> None:
    hourly = Interval(3600)

    assert hourly.next_tick_after(utc(2024, 5, 1, 10, 17, 3)) == utc(2024, 5, 1, 11)
    assert hourly.next_tick_after(utc(2024, 5, 1, 11)) == utc(2024, 5, 1, 12)


def test_two_replicas_started_at_different_times_compute_the_same_interval_ticks() -> None:
    # Each "replica" builds its own entry and starts from its own clock reading.
    replica_a = Entry(name="sync", task="app.sync", schedule=Interval(7))
    replica_b = Entry.from_dict({"name": "sync", "task": "app.sync", "every_s": 7})

    from_a = next_ticks(replica_a, utc(2024, 5, 1, 10, 0, 0), n=50)
    from_b = next_ticks(replica_b, utc(2024, 5, 1, 10, 0, 13), n=40)

    assert from_b == [t for t in from_a if t > utc(2024, 5, 1, 10, 0, 13)][:40]
    assert {int(t.timestamp()) % 7 for t in from_a} == {0}


def test_interval_ticks_start_at_start_at_and_step_from_it() -> None:
    start = utc(2024, 5, 1, 10, 0, 5)
    every_90s = Interval(90, start_at=start)

    assert ticks_between(every_90s, utc(2024, 5, 1), utc(2024, 5, 1, 10, 4)) == [
        start,
        start + timedelta(seconds=90),
        start + timedelta(seconds=180),
    ]


def test_interval_has_no_tick_before_start_at() -> None:
    every_90s = Interval(90, start_at=utc(2024, 5, 1, 10))

    assert every_90s.last_tick_ms_at_or_before(every_90s.anchor_ms - 1) is None


def test_interval_accepts_fractions_of_a_second() -> None:
    assert Interval(0.25).next_tick_after(utc(2024, 5, 1, 10, 0, 0)) == utc(
        2024, 5, 1, 10
    ) + timedelta(milliseconds=250)


def test_five_field_cron_reads_minute_hour_day_month_weekday() -> None:
    workdays = Cron("*/30 9-10 * * MON-FRI")

    # 2024-05-03 is a Friday: 09:00, 09:30, 10:00, 10:30, then Monday 09:00.
    assert ticks_between(workdays, utc(2024, 5, 3), utc(2024, 5, 6, 9, 1)) == [
        utc(2024, 5, 3, 9),
        utc(2024, 5, 3, 9, 30),
        utc(2024, 5, 3, 10),
        utc(2024, 5, 3, 10, 30),
        utc(2024, 5, 6, 9),
    ]


def test_six_field_cron_puts_seconds_first() -> None:
    at_30s_every_5_min = Cron("30 */5 * * * *")

    assert ticks_between(at_30s_every_5_min, utc(2024, 5, 1, 10), utc(2024, 5, 1, 10, 11)) == [
        utc(2024, 5, 1, 10, 0, 30),
        utc(2024, 5, 1, 10, 5, 30),
        utc(2024, 5, 1, 10, 10, 30),
    ]


def test_six_field_cron_can_fire_every_few_seconds() -> None:
    every_20s = Cron("*/20 * * * * *")

    assert ticks_between(every_20s, utc(2024, 5, 1, 10), utc(2024, 5, 1, 10, 1)) == [
        utc(2024, 5, 1, 10, 0, 0),
        utc(2024, 5, 1, 10, 0, 20),
        utc(2024, 5, 1, 10, 0, 40),
    ]


def test_cron_wall_times_are_read_in_the_entry_time_zone() -> None:
    nine_in_tokyo = Cron("0 9 * * *", tz="Asia/Tokyo")

    assert nine_in_tokyo.next_tick_after(utc(2024, 5, 1, 12)) == utc(2024, 5, 2, 0)


def test_cron_shortcuts_are_accepted() -> None:
    assert Cron("@daily", tz="Europe/Berlin").next_tick_after(utc(2024, 5, 1, 12)) == local(
        "Europe/Berlin", 2024, 5, 2
    )


def test_cron_next_tick_is_strictly_after_the_given_instant() -> None:
    hourly = Cron("0 * * * *")

    assert hourly.next_tick_after(utc(2024, 5, 1, 10)) == utc(2024, 5, 1, 11)
    assert hourly.last_tick_ms_at_or_before(hourly.next_tick_ms_after(0) or 0) == 3_600_000


def test_once_has_a_single_tick_at_its_instant() -> None:
    at = local("Europe/Berlin", 2024, 12, 24, 18)
    once = Once(at)

    assert once.next_tick_after(utc(2024, 12, 24)) == utc(2024, 12, 24, 17)
    assert once.next_tick_after(at) is None


def test_next_ticks_lists_upcoming_ticks_as_utc_datetimes() -> None:
    entry = Entry(name="noon", task="t", schedule=Cron("0 12 * * *", tz="America/New_York"))

    assert next_ticks(entry, utc(2024, 7, 1), n=2) == [utc(2024, 7, 1, 16), utc(2024, 7, 2, 16)]


def test_next_ticks_of_a_one_off_lists_at_most_one() -> None:
    entry = Entry(name="launch", task="t", schedule=Once(utc(2024, 7, 1, 9)))

    assert next_ticks(entry, utc(2024, 7, 1), n=5) == [utc(2024, 7, 1, 9)]


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: Interval(0), "interval must be positive, got 0"),
        (lambda: Interval(-5), "interval must be positive, got -5"),
        (lambda: Interval(True), "interval must be a number, got True"),
        (lambda: Interval(float("inf")), "interval must be finite, got inf"),
        (lambda: Cron("0 0 * * *", tz="Mars/Base"), "unknown time zone 'Mars/Base'"),
        (lambda: Cron("0 0 * * *", tz="../etc/passwd"), "unknown time zone '../etc/passwd'"),
        (lambda: Cron("61 * * * *"), "invalid cron expression '61 * * * *': out of range"),
        (lambda: Cron("0 0 30 2 *"), "cron expression '0 0 30 2 *' never matches a date"),
        (
            lambda: Cron("@reboot"),
            "unknown cron shortcut '@reboot'; use one of @annually, "
            "@daily, @hourly, @midnight, @monthly, @weekly, @yearly",
        ),
    ],
)
def test_bad_schedule_values_are_refused_with_the_problem(build: object, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]

    assert str(caught.value) == problem


def test_cron_with_seven_fields_is_refused() -> None:
    with pytest.raises(ConfigError, match="has 7 fields; expected 5"):
        Cron("0 0 0 * * * 2030")


@pytest.mark.parametrize("expr", ["H * * * *", "R * * * *", "0 H(0-5) * * *", "0 0 * * *\tR/2"])
def test_hashed_and_random_cron_fields_are_refused_because_replicas_must_agree(
    expr: str,
) -> None:
    with pytest.raises(ConfigError, match=r"hashed \(H\) and random \(R\) fields"):
        Cron(expr)


def test_a_naive_one_off_datetime_is_refused() -> None:
    with pytest.raises(ConfigError, match="at needs a time zone or UTC offset"):
        Once(utc(2024, 1, 1).replace(tzinfo=None))
