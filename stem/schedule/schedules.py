"""When an entry fires: :class:`Interval`, :class:`Cron` and :class:`Once`.

A schedule is a pure function of time: it names its ticks, the instants at which it is
due, and every replica computes the same ticks from the same schedule without talking to
the others. The core methods work on UTC epoch milliseconds (a tick's identity); the
``datetime`` methods wrap them for callers that think in datetimes.

A schedule refuses bad values when it is built, with a :class:`~stem.errors.ConfigError`
that names the problem; :class:`~stem.schedule.entries.Entry` and the TOML loader add the
entry's name to it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from stem.errors import ConfigError
from stem.schedule.wallclock import from_ms, to_ms, wall_cursor, wall_to_ms

#: The ``@`` shortcuts croniter expands without a hash id (deterministic ones only).
CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
# croniter's H (hashed) and R (random) fields: R differs per process and H needs a seed,
# and replicas must agree on every tick without talking. Jitter covers the same need.
_HASHED_FIELD = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
_ONE_US = timedelta(microseconds=1)
# Any date a search starts from when checking that an expression can ever match.
_PROBE = datetime(2000, 1, 1)


def _number(value: object, what: str) -> float:
    # bool is an int subclass, but `every_s = true` is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    return value


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ConfigError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{what} needs a time zone or UTC offset, got {value.isoformat()}")
    return value


@dataclass(frozen=True)
class Interval:
    """Every ``every_s`` seconds, on a grid anchored at ``start_at`` (default: the epoch).

    Tick k is at ``anchor + k * every_s`` for k >= 0, so replicas that start at different
    moments still compute the same ticks, and no tick falls before ``start_at``. The
    period is held in whole milliseconds (a tick's resolution).
    """

    every_s: float
    start_at: datetime | None = None
    every_ms: int = field(init=False, repr=False, compare=False)
    anchor_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        every_s = _number(self.every_s, "interval")
        if every_s <= 0:
            raise ConfigError(f"interval must be positive, got {every_s!r}")
        every_ms = round(every_s * 1000)
        if every_ms < 1:
            raise ConfigError(f"interval must be at least 0.001 s, got {every_s!r}")
        anchor_ms = 0 if self.start_at is None else to_ms(_aware(self.start_at, "start_at"))
        object.__setattr__(self, "every_ms", every_ms)
        object.__setattr__(self, "anchor_ms", anchor_ms)

    def next_tick_ms_after(self, t_ms: int) -> int | None:
        """The first tick strictly after ``t_ms``."""
        if t_ms < self.anchor_ms:
            return self.anchor_ms
        return self.anchor_ms + ((t_ms - self.anchor_ms) // self.every_ms + 1) * self.every_ms

    def last_tick_ms_at_or_before(self, t_ms: int) -> int | None:
        """The latest tick at or before ``t_ms``, or None before the anchor."""
        if t_ms < self.anchor_ms:
            return None
        return self.anchor_ms + (t_ms - self.anchor_ms) // self.every_ms * self.every_ms

    def next_tick_after(self, t: datetime) -> datetime | None:
        """The first tick strictly after ``t`` (aware), as an aware UTC datetime."""
        return _wrap(self.next_tick_ms_after(to_ms(t)))

    def to_dict(self) -> dict[str, Any]:
        """The schedule's keys in an entry's flat mapping (TOML and JSON form)."""
        out: dict[str, Any] = {"every_s": self.every_s}
        if self.start_at is not None:
            out["start_at"] = self.start_at
        return out


@dataclass(frozen=True)
class Cron:
    """A cron expression read as wall-clock times in the IANA time zone ``tz``.

    Five fields (minute hour day month weekday) or six with **seconds first** (second
    minute hour day month weekday, as in Quartz and Spring), plus croniter's ``@daily``
    style shortcuts. Hashed (``H``) and random (``R``) fields are refused: replicas must
    agree on every tick. Daylight-saving days follow :mod:`stem.schedule.wallclock`: a wall
    time in a spring-forward gap fires once at the end of the gap, and a wall time in a
    fall-back fold fires once, at its first occurrence.
    """

    expr: str
    tz: str = "UTC"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expr, str):
            raise ConfigError(f"cron expression must be a string, got {self.expr!r}")
        if not isinstance(self.tz, str):
            raise ConfigError(f"time zone must be a string, got {self.tz!r}")
        _check_cron(self.expr)
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            # ValueError: keys like "../x" or "" that cannot be a zone file name.
            raise ConfigError(f"unknown time zone {self.tz!r}") from None
        object.__setattr__(self, "zone", zone)

    def _iter(self, wall: datetime) -> croniter:
        return croniter(self.expr, wall, second_at_beginning=True)

    def next_tick_ms_after(self, t_ms: int) -> int | None:
        """The first tick strictly after ``t_ms``."""
        wall, in_repeat = wall_cursor(t_ms, self.zone)
        if in_repeat:
            # Start just before the end of the fold so that its first wall time counts.
            wall = wall.replace(microsecond=0) - _ONE_US
        try:
            # Normally the first match is the answer; the loop only guards zones with
            # back-to-back transitions, where a match may still map to t_ms or earlier.
            it = self._iter(wall)
            for _ in range(64):
                tick_ms = wall_to_ms(it.get_next(datetime), self.zone)
                if tick_ms > t_ms:
                    return tick_ms
        except CroniterBadDateError:
            pass  # no match within croniter's search horizon
        return None

    def last_tick_ms_at_or_before(self, t_ms: int) -> int | None:
        """The latest tick at or before ``t_ms``."""
        wall, in_repeat = wall_cursor(t_ms, self.zone)
        if not in_repeat:
            # croniter's get_prev is strict; a microsecond past makes it inclusive.
            wall = wall + _ONE_US
        try:
            it = self._iter(wall)
            for _ in range(64):
                tick_ms = wall_to_ms(it.get_prev(datetime), self.zone)
                if tick_ms <= t_ms:
                    return tick_ms
        except CroniterBadDateError:
            pass
        return None

    def next_tick_after(self, t: datetime) -> datetime | None:
        """The first tick strictly after ``t`` (aware), as an aware UTC datetime."""
        return _wrap(self.next_tick_ms_after(to_ms(t)))

    def to_dict(self) -> dict[str, Any]:
        """The schedule's keys in an entry's flat mapping (TOML and JSON form)."""
        return {"cron": self.expr, "tz": self.tz}


def _check_cron(expr: str) -> None:
    fields = expr.split()
    if len(fields) == 1 and fields[0].startswith("@"):
        if fields[0].lower() not in CRON_ALIASES:
            raise ConfigError(
                f"unknown cron shortcut {expr!r}; use one of {', '.join(sorted(CRON_ALIASES))}"
            )
    elif len(fields) not in (5, 6):
        raise ConfigError(
            f"cron expression {expr!r} has {len(fields)} fields; expected 5 "
            "(minute hour day month weekday) or 6 (second first)"
        )
    if any(_HASHED_FIELD.match(f) for f in fields):
        raise ConfigError(
            f"cron expression {expr!r}: hashed (H) and random (R) fields are not supported "
            "because every beat replica must compute the same ticks; use jitter_s"
        )
    try:
        croniter(expr, _PROBE, second_at_beginning=True).get_next(datetime)
    except CroniterBadDateError:
        raise ConfigError(f"cron expression {expr!r} never matches a date") from None
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        detail = str(exc).removeprefix(f"[{expr}]").strip(" ,.")
        detail = detail.removeprefix("is not acceptable").strip(" ,.")
        raise ConfigError(
            f"invalid cron expression {expr!r}" + (f": {detail}" if detail else "")
        ) from None


@dataclass(frozen=True)
class Once:
    """A single tick at the aware datetime ``at``."""

    at: datetime
    at_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at_ms", to_ms(_aware(self.at, "at")))

    def next_tick_ms_after(self, t_ms: int) -> int | None:
        """The tick if it is strictly after ``t_ms``."""
        return self.at_ms if self.at_ms > t_ms else None

    def last_tick_ms_at_or_before(self, t_ms: int) -> int | None:
        """The tick if it is at or before ``t_ms``."""
        return self.at_ms if self.at_ms <= t_ms else None

    def next_tick_after(self, t: datetime) -> datetime | None:
        """The tick if it is strictly after ``t`` (aware), as an aware UTC datetime."""
        return _wrap(self.next_tick_ms_after(to_ms(t)))

    def to_dict(self) -> dict[str, Any]:
        """The schedule's keys in an entry's flat mapping (TOML and JSON form)."""
        return {"at": self.at}


#: Any of the three schedule kinds.
Schedule: TypeAlias = Interval | Cron | Once


def _wrap(t_ms: int | None) -> datetime | None:
    return None if t_ms is None else from_ms(t_ms)
