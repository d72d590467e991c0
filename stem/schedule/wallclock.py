"""Instants in epoch milliseconds, and wall-clock times of a time zone mapped to them.

Ticks are identified by their UTC epoch milliseconds, so every replica agrees on them. Cron
expressions, though, describe *wall-clock* times in a zone, and on daylight-saving days
the mapping from wall time to instant is not one to one:

* **Spring forward (a gap)**: wall times inside the gap (02:00-02:59 in New York on the
  March transition day) do not exist. Such a wall time maps to the first instant after
  the gap, the transition itself (03:00 local), so a daily 02:30 entry still runs once
  that day, at 03:00. Several gap times collapse into that one instant and fire once.
* **Fall back (a fold)**: wall times inside the fold (01:00-01:59 in New York in
  November) happen twice. Such a wall time maps to its *first* occurrence only, so a
  wall-clock time fires once, never twice. The price: a sub-hourly cron entry pauses
  during the repeated hour (its wall times already fired). An entry that must run at an
  even pace in real time should use an interval, or a cron entry in UTC.

This is the rule for every cron entry: each matching wall-clock time fires exactly once,
at the instant defined above. Time zones come from ``zoneinfo`` (PEP 495 ``fold``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime, rounded down (exact integer arithmetic)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {t.isoformat()}")
    return (t - EPOCH) // _MS


def from_ms(t_ms: int) -> datetime:
    """The aware UTC datetime of an epoch-milliseconds instant."""
    return EPOCH + t_ms * _MS


def _offset_ms(zone: tzinfo, t_ms: int) -> int:
    offset = from_ms(t_ms).astimezone(zone).utcoffset()
    assert offset is not None  # noqa: S101  (narrows a type: a zoneinfo zone always knows its offset)
    return offset // _MS


def _transition_ms(zone: tzinfo, lo_ms: int, hi_ms: int) -> int:
    """The smallest instant in (lo_ms, hi_ms] whose offset equals the offset at hi_ms.

    The caller knows that exactly one transition lies in that range (it is at most a gap's
    or a fold's length wide), so a binary search over milliseconds finds it exactly.
    """
    target = _offset_ms(zone, hi_ms)
    while hi_ms - lo_ms > 1:
        mid = (lo_ms + hi_ms) // 2
        if _offset_ms(zone, mid) == target:
            hi_ms = mid
        else:
            lo_ms = mid
    return hi_ms


def wall_to_ms(wall: datetime, zone: tzinfo) -> int:
    """The instant at which the naive wall-clock time ``wall`` fires in ``zone``.

    Existing, unambiguous times map to themselves; a time in a fold maps to its first
    occurrence; a time in a gap maps to the end of the gap (see the module docstring).
    """
    first = wall.replace(tzinfo=zone, fold=0)
    first_ms = to_ms(first)
    if from_ms(first_ms).astimezone(zone).replace(tzinfo=None) == wall:
        return first_ms  # exists; fold=0 is the earlier reading when it is ambiguous
    # In a gap fold=0 reads the wall time with the offset from before the transition,
    # fold=1 with the offset after it: the transition lies between the two readings.
    second_ms = to_ms(wall.replace(tzinfo=zone, fold=1))
    return _transition_ms(zone, min(first_ms, second_ms), max(first_ms, second_ms))


def wall_cursor(t_ms: int, zone: tzinfo) -> tuple[datetime, bool]:
    """Where a wall-clock search for ticks around instant ``t_ms`` should start.

    Returns ``(wall, in_repeat)``. Normally ``wall`` is the local wall time of ``t_ms`` and
    ``in_repeat`` is false. When ``t_ms`` falls in the *second* pass of a fold, every wall
    time of the fold already fired in the first pass, so ``wall`` is the end of the fold
    (the first wall time after it) and ``in_repeat`` is true: searching forward must start
    there, and searching backward must stop just before it.
    """
    local = from_ms(t_ms).astimezone(zone)
    naive = local.replace(tzinfo=None)
    if local.fold == 0:
        return naive, False
    earlier = local.replace(fold=0).utcoffset()
    later = local.utcoffset()
    assert earlier is not None and later is not None  # noqa: S101  (narrows a type)
    repeat_ms = (earlier - later) // _MS
    if repeat_ms <= 0:
        return naive, False
    start_ms = _transition_ms(zone, t_ms - repeat_ms, t_ms)
    # The fold ends where the old offset would have read the transition instant.
    return (from_ms(start_ms) + earlier).replace(tzinfo=None), True
