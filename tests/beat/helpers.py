"""Small helpers shared by the beat tests: explicit instants, never the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from stem.schedule import Schedule
from stem.schedule.wallclock import from_ms, to_ms


def utc(
    year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An aware UTC datetime: utc(2024, 3, 31, 1) is 2024-03-31T01:00Z."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(
    tz: str,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    """An aware datetime at a wall-clock time in ``tz`` (``fold=1``: its second occurrence)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold)


def ticks_between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every tick in [start, end), found by walking forward one tick at a time."""
    out: list[datetime] = []
    t_ms = schedule.next_tick_ms_after(to_ms(start) - 1)
    while t_ms is not None and t_ms < to_ms(end):
        out.append(from_ms(t_ms))
        t_ms = schedule.next_tick_ms_after(t_ms)
    return out
