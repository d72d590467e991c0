"""Daylight-saving days: each matching wall-clock time fires exactly once.

Transitions used (2024): Europe/Berlin springs forward on 31 March at 01:00 UTC (02:00 CET
becomes 03:00 CEST) and falls back on 27 October at 01:00 UTC (03:00 CEST becomes 02:00
CET); America/New_York springs forward on 10 March at 07:00 UTC (02:00 EST becomes 03:00
EDT) and falls back on 3 November at 06:00 UTC (02:00 EDT becomes 01:00 EST).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from stem.schedule import Cron
from stem.schedule.wallclock import from_ms, to_ms

from .helpers import local, ticks_between, utc


def day_ticks(expr: str, tz: str, year: int, month: int, day: int) -> list[str]:
    """The ticks of one local calendar day, as local ISO times for readable assertions."""
    cron = Cron(expr, tz=tz)
    start = local(tz, year, month, day)
    end = local(tz, year, month, day) + timedelta(days=1)
    return [t.astimezone(cron.zone).isoformat() for t in ticks_between(cron, start, end)]


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        ("Europe/Berlin", (2024, 3, 31), ["2024-03-31T03:00:00+02:00"]),
        ("America/New_York", (2024, 3, 10), ["2024-03-10T03:00:00-04:00"]),
    ],
)
def test_a_daily_0230_entry_fires_once_at_0300_on_the_spring_forward_day(
    tz: str, day: tuple[int, int, int], expected: list[str]
) -> None:
    assert day_ticks("30 2 * * *", tz, *day) == expected


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        # 02:30 happens twice in Berlin: it fires at the first one (still summer time).
        ("Europe/Berlin", (2024, 10, 27), ["2024-10-27T02:30:00+02:00"]),
        # 02:30 is not repeated in New York (01:00-01:59 is): an ordinary day for it.
        ("America/New_York", (2024, 11, 3), ["2024-11-03T02:30:00-05:00"]),
    ],
)
def test_a_daily_0230_entry_fires_once_on_the_fall_back_day(
    tz: str, day: tuple[int, int, int], expected: list[str]
) -> None:
    assert day_ticks("30 2 * * *", tz, *day) == expected


def test_a_daily_entry_inside_the_repeated_new_york_hour_fires_once_at_its_first_occurrence() -> (
    None
):
    assert day_ticks("30 1 * * *", "America/New_York", 2024, 11, 3) == ["2024-11-03T01:30:00-04:00"]


@pytest.mark.parametrize(
    ("tz", "day", "repeated_hour"),
    [
        ("Europe/Berlin", (2024, 10, 27), 2),
        ("America/New_York", (2024, 11, 3), 1),
    ],
)
def test_an_hourly_entry_does_not_fire_twice_for_the_repeated_hour(
    tz: str, day: tuple[int, int, int], repeated_hour: int
) -> None:
    ticks = day_ticks("0 * * * *", tz, *day)

    assert len(ticks) == 24  # 25 real hours that day, 24 distinct wall-clock hours
    assert [t for t in ticks if t[11:13] == f"{repeated_hour:02d}"] == [
        local(tz, *day, repeated_hour, fold=0).isoformat()
    ]


@pytest.mark.parametrize(
    ("tz", "day", "skipped_hour"),
    [
        ("Europe/Berlin", (2024, 3, 31), 2),
        ("America/New_York", (2024, 3, 10), 2),
    ],
)
def test_an_hourly_entry_fires_23_times_on_the_spring_forward_day(
    tz: str, day: tuple[int, int, int], skipped_hour: int
) -> None:
    ticks = day_ticks("0 * * * *", tz, *day)

    assert len(ticks) == 23
    assert [t[11:13] for t in ticks].count(f"{skipped_hour + 1:02d}") == 1


def test_a_sub_hourly_entry_collapses_the_gap_into_one_tick_at_its_end() -> None:
    ticks = day_ticks("*/20 * * * *", "America/New_York", 2024, 3, 10)

    assert [t[11:16] for t in ticks if "01:00" <= t[11:16] <= "03:40"] == [
        "01:00", "01:20", "01:40", "03:00", "03:20", "03:40",
    ]  # fmt: skip


def test_a_sub_hourly_entry_pauses_during_the_repeated_hour() -> None:
    # Documented price of "each wall time fires once": 01:00-01:40 EST already fired as EDT.
    cron = Cron("*/20 * * * *", tz="America/New_York")

    assert ticks_between(cron, utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 7, 30)) == [
        utc(2024, 11, 3, 5, 40),  # 01:40 EDT
        utc(2024, 11, 3, 7, 0),  # 02:00 EST
        utc(2024, 11, 3, 7, 20),
    ]


def test_next_tick_from_inside_the_repeated_hour_skips_wall_times_that_already_fired() -> None:
    hourly = Cron("0 * * * *", tz="America/New_York")
    daily_0130 = Cron("30 1 * * *", tz="America/New_York")
    second_0110 = utc(2024, 11, 3, 6, 10)  # 01:10 EST, the second pass

    assert hourly.next_tick_after(second_0110) == local("America/New_York", 2024, 11, 3, 2)
    assert daily_0130.next_tick_after(second_0110) == local("America/New_York", 2024, 11, 4, 1, 30)


def test_utc_cron_entries_ignore_local_daylight_saving() -> None:
    hourly_utc = Cron("0 * * * *")

    assert len(ticks_between(hourly_utc, utc(2024, 10, 27), utc(2024, 10, 28))) == 24


DAY = timedelta(days=1)
ZONES_AND_DAYS = [
    ("Europe/Berlin", utc(2024, 3, 30, 20)),
    ("Europe/Berlin", utc(2024, 10, 26, 20)),
    ("America/New_York", utc(2024, 3, 10, 2)),
    ("America/New_York", utc(2024, 11, 3, 2)),
    # Lord Howe Island shifts by 30 minutes: a fold and a gap that are not whole hours.
    ("Australia/Lord_Howe", utc(2024, 4, 6, 12)),
    ("Australia/Lord_Howe", utc(2024, 10, 5, 12)),
]


@pytest.mark.parametrize(("tz", "start"), ZONES_AND_DAYS)
@pytest.mark.parametrize("expr", ["0 * * * *", "*/15 * * * *", "30 2 * * *", "45 1 * * *"])
def test_searching_backward_and_forward_agrees_with_walking_every_tick(
    tz: str, start: datetime, expr: str
) -> None:
    cron = Cron(expr, tz=tz)
    walked = [to_ms(t) for t in ticks_between(cron, start - DAY * 2, start + DAY * 3)]
    assert walked == sorted(set(walked))  # strictly increasing: nothing fires twice
    grid = [to_ms(start + timedelta(minutes=m, seconds=m % 60)) for m in range(0, 16 * 60, 7)]
    window = [w for w in walked if to_ms(start) <= w <= to_ms(start + timedelta(hours=16))]
    probes = sorted({*grid, *window, *(w - 1 for w in window)})

    for t_ms in probes:
        expected_prev = max(w for w in walked if w <= t_ms)
        expected_next = min(w for w in walked if w > t_ms)

        assert (from_ms(expected_prev), from_ms(expected_next)) == (
            from_ms(cron.last_tick_ms_at_or_before(t_ms) or 0),
            from_ms(cron.next_tick_ms_after(t_ms) or 0),
        )
