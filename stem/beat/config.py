"""Schedule entries from ``stem.toml``: the ``[[schedule]]`` array of tables.

::

    [[schedule]]
    name = "nightly-report"
    task = "reports.nightly"
    cron = "30 2 * * *"
    tz = "Europe/Berlin"
    kwargs = { format = "pdf" }
    jitter_s = 60
    missed = "run_once"

    [[schedule]]
    name = "heartbeat"
    task = "ops.ping"
    every_s = 30

A running beat must keep firing good entries when one is bad, so
:func:`load_entries_from_toml` returns the good entries *and* one error per bad entry;
:func:`load_entries_from_toml_strict` (for ``stem schedule check`` and start-up) raises
the first. A file that cannot be read or parsed at all is an error either way. Unknown
keys are refused, with a suggestion when the key looks like a typo.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime
from os import PathLike
from typing import Any

from stem.beat.entries import Entry, MissedPolicy, ScheduleEntryError
from stem.beat.schedules import Cron, Interval, Once, Schedule
from stem.errors import ConfigError

#: Keys that choose the kind of schedule; an entry has exactly one of them.
SCHEDULE_KEYS = ("every_s", "cron", "at")
#: Every key a ``[[schedule]]`` table may hold.
KEYS = frozenset(
    {"name", "task", "args", "kwargs", "queue", "priority", "jitter_s", "enabled", "missed"}
    | {"grace_s", "start_at", "tz", *SCHEDULE_KEYS}
)
# Keys that belong to one schedule kind only: using them with another is a mistake.
_ONLY_WITH = {"start_at": "every_s", "tz": "cron"}
# Optional keys passed straight to Entry, which checks their types and values.
_PASSTHROUGH = ("args", "kwargs", "queue", "priority", "jitter_s", "enabled", "grace_s")


def entry_from_mapping(data: Mapping[str, Any], *, index: int | None = None) -> Entry:
    """Build one entry from its flat mapping (a ``[[schedule]]`` table or stored JSON).

    ``index`` (1-based position in a file) labels the error when the entry has no name.
    Raises :class:`~stem.beat.entries.ScheduleEntryError` naming the entry and problem.
    """
    name = data.get("name")
    try:
        _check_keys(data)
        schedule = _schedule(data)
        options = {key: data[key] for key in _PASSTHROUGH if key in data}
        missed = _missed(data.get("missed", MissedPolicy.SKIP.value))
    except ConfigError as exc:
        label = name if isinstance(name, str) else None
        raise ScheduleEntryError(label, str(exc), index=index) from None
    return Entry(name=data["name"], task=data["task"], schedule=schedule, missed=missed, **options)


def entries_from_tables(
    tables: Sequence[Mapping[str, Any]],
) -> tuple[list[Entry], list[ConfigError]]:
    """Entries from already-parsed tables: the good ones, and one error per bad one.

    A repeated name is an error for every entry after the first that uses it: job ids are
    derived from names, so two entries with one name would suppress each other's ticks.
    """
    entries: list[Entry] = []
    errors: list[ConfigError] = []
    first_index: dict[str, int] = {}
    for index, table in enumerate(tables, start=1):
        try:
            entry = entry_from_mapping(table, index=index)
        except ScheduleEntryError as exc:
            errors.append(exc)
            continue
        if entry.name in first_index:
            first = first_index[entry.name]
            problem = f"duplicate name (entry #{index}; first defined by entry #{first})"
            errors.append(ScheduleEntryError(entry.name, problem, index=index))
            continue
        first_index[entry.name] = index
        entries.append(entry)
    return entries, errors


def load_entries_from_toml(
    path: str | PathLike[str],
) -> tuple[list[Entry], list[ConfigError]]:
    """Read ``[[schedule]]`` from a TOML file: the good entries, and one error per bad one.

    A file without a ``schedule`` key has no entries. Raises :class:`ConfigError` when the
    file cannot be read, is not TOML, or ``schedule`` is not an array of tables.
    """
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    tables = doc.get("schedule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: 'schedule' must be an array of tables ([[schedule]])")
    return entries_from_tables(tables)


def load_entries_from_toml_strict(path: str | PathLike[str]) -> list[Entry]:
    """Like :func:`load_entries_from_toml`, but raise the first bad entry's error."""
    entries, errors = load_entries_from_toml(path)
    if errors:
        raise errors[0]
    return entries


def _check_keys(data: Mapping[str, Any]) -> None:
    unknown = sorted(set(data) - KEYS)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown key {key!r}{hint}")
    for key in ("name", "task"):
        if key not in data:
            raise ConfigError(f"missing key {key!r}")
    kinds = [key for key in SCHEDULE_KEYS if key in data]
    if len(kinds) != 1:
        got = f" (got {' and '.join(repr(k) for k in kinds)})" if kinds else ""
        raise ConfigError(f"give exactly one of 'every_s', 'cron' or 'at'{got}")
    for key, kind in _ONLY_WITH.items():
        if key in data and kind not in data:
            raise ConfigError(f"{key!r} only applies to {kind!r} entries")


def _schedule(data: Mapping[str, Any]) -> Schedule:
    if "every_s" in data:
        start_at = data.get("start_at")
        return Interval(
            data["every_s"], start_at=None if start_at is None else _datetime(start_at, "start_at")
        )
    if "cron" in data:
        return Cron(data["cron"], tz=data.get("tz", "UTC"))
    return Once(_datetime(data["at"], "at"))


def _datetime(value: object, key: str) -> datetime:
    # TOML has native offset date-times; JSON (the schedule store) carries ISO strings.
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{key} is not an ISO 8601 date-time: {value!r}") from None
    if not isinstance(value, datetime):
        raise ConfigError(f"{key} must be a date-time, got {value!r}")
    if value.tzinfo is None:
        raise ConfigError(
            f"{key} needs a UTC offset, e.g. {value.isoformat()}+01:00 or {value.isoformat()}Z"
        )
    return value


def _missed(value: object) -> MissedPolicy:
    try:
        return MissedPolicy(value)
    except ValueError:
        choices = " or ".join(repr(p.value) for p in MissedPolicy)
        raise ConfigError(f"missed must be {choices}, got {value!r}") from None
