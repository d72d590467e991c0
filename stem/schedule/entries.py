"""Schedule entries: what beat enqueues, when, and what it does about missed ticks.

An :class:`Entry` is immutable and checked when it is built. Entries come from code, from
``stem.toml`` (:mod:`stem.schedule.config`) and from the schedule store (:meth:`Entry.to_json`);
all three share one flat set of keys, so a key means the same thing everywhere, and all
three are turned into entries here, by :func:`entry_from_mapping`::

    name, task, args, kwargs, queue, priority, jitter_s, enabled, missed, grace_s,
    and exactly one schedule: every_s (+ start_at) | cron (+ tz) | at

A bad entry is refused with a :class:`ScheduleEntryError`, one line that names the entry
and the problem: ``schedule entry 'nightly': unknown time zone 'Mars/Base'``.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stem.errors import ConfigError
from stem.schedule.schedules import Cron, Interval, Once, Schedule

#: How long after its fire time a tick still counts as on time (see ``Entry.grace_s``).
DEFAULT_GRACE_S = 10.0
#: Priority levels an entry may ask for (the broker's levels: 0-9, higher runs first).
PRIORITIES = range(10)
#: Version of the JSON form written by :meth:`Entry.to_json`.
JSON_VERSION = 1

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


# Entry names end up in job ids and Redis keys: no spaces, no braces (hash tags).
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
NAME_RULE = "use 1-200 letters, digits, '_', '.', ':' or '-'"


class MissedPolicy(enum.Enum):
    """What to do, after downtime, about ticks that passed while no beat was running."""

    #: Fire nothing that was missed; only ticks that are on time fire.
    SKIP = "skip"
    #: Fire one tick, the latest missed one, unless an on-time tick fires anyway.
    RUN_ONCE = "run_once"


class ScheduleEntryError(ConfigError):
    """One schedule entry is invalid: ``name`` (None if it has none) and ``problem`` say
    which and why.

    The message names the entry by its quoted name, else by ``#index`` (its position in
    a file), else as ``(unnamed)``.
    """

    def __init__(self, name: str | None, problem: str, *, index: int | None = None) -> None:
        label = f"#{index}" if index is not None else "(unnamed)"
        if name:
            label = repr(name)
        super().__init__(f"schedule entry {label}: {problem}")
        self.name = name
        self.index = index
        self.problem = problem


def job_id_for_tick(entry_name: str, tick_ms: int) -> str:
    """The job id of one tick of one entry: ``beat:<name>:<tick_ms>``.

    Every replica derives the same id for the same tick, so the broker's dedupe on job id
    (and the idempotency key, which beat sets to the same value) makes each tick run once
    however many replicas fire it. The entry-name rule keeps the id valid in Redis keys.
    """
    if not _NAME.match(entry_name):
        raise ConfigError(f"invalid entry name {entry_name!r}: {NAME_RULE}")
    return f"beat:{entry_name}:{tick_ms}"


@dataclass(frozen=True)
class Entry:
    """One scheduled task: enqueue ``task(*args, **kwargs)`` on ``queue`` at each tick.

    ``jitter_s`` delays each tick's fire time by a deterministic amount in
    ``[0, jitter_s)`` to spread entries that share a tick (see
    :func:`stem.schedule.ticks.jitter_ms`).
    ``grace_s`` is how late past its fire time a tick may still fire; a later one counts
    as missed and ``missed`` decides its fate. ``queue`` and ``priority`` None leave the
    task's defaults to ``enqueue``. Entries compare by value and hash by name (names are
    unique in a schedule).
    """

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    jitter_s: float = 0.0
    enabled: bool = True
    missed: MissedPolicy = MissedPolicy.SKIP
    grace_s: float = DEFAULT_GRACE_S

    def __post_init__(self) -> None:
        try:
            self._check()
        except ConfigError as exc:
            name = self.name if isinstance(self.name, str) else None
            raise ScheduleEntryError(name, str(exc)) from None

    def __hash__(self) -> int:
        return hash(self.name)

    def _check(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(f"invalid name: {NAME_RULE}")
        if not isinstance(self.task, str) or not self.task.strip():
            raise ConfigError(f"task must be a non-empty string, got {self.task!r}")
        if not isinstance(self.schedule, Interval | Cron | Once):
            raise ConfigError(f"schedule must be Interval, Cron or Once, got {self.schedule!r}")
        if self.queue is not None and (
            not isinstance(self.queue, str) or not _NAME.match(self.queue)
        ):
            raise ConfigError(f"invalid queue {self.queue!r}: {NAME_RULE}")
        if self.priority is not None and (
            isinstance(self.priority, bool) or self.priority not in PRIORITIES
        ):
            raise ConfigError(f"priority must be an integer from 0 to 9, got {self.priority!r}")
        _check_seconds(self.jitter_s, "jitter_s", allow_zero=True)
        _check_seconds(self.grace_s, "grace_s", allow_zero=False)
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"enabled must be true or false, got {self.enabled!r}")
        if not isinstance(self.missed, MissedPolicy):
            raise ConfigError(f"missed must be a MissedPolicy, got {self.missed!r}")
        self._freeze_arguments()

    def _freeze_arguments(self) -> None:
        if not isinstance(self.args, list | tuple):
            raise ConfigError(f"args must be a list, got {self.args!r}")
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise ConfigError(f"kwargs must be a table with string keys, got {self.kwargs!r}")
        try:
            # They travel as JSON (schedule store, job envelope): refuse now, not at a tick.
            json.dumps([self.args, self.kwargs], allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"args and kwargs must be JSON values: {exc}") from None
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    def job_id(self, tick_ms: int) -> str:
        """The job id of this entry's tick ``tick_ms`` (see :func:`job_id_for_tick`)."""
        return job_id_for_tick(self.name, tick_ms)

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping form (TOML keys); datetimes stay ``datetime`` objects."""
        out: dict[str, Any] = {"name": self.name, "task": self.task}
        out.update(self.schedule.to_dict())
        out.update(
            args=list(self.args),
            kwargs=dict(self.kwargs),
            jitter_s=self.jitter_s,
            enabled=self.enabled,
            missed=self.missed.value,
            grace_s=self.grace_s,
        )
        # TOML has no null: options left to enqueue's defaults are simply absent.
        if self.queue is not None:
            out["queue"] = self.queue
        if self.priority is not None:
            out["priority"] = self.priority
        return out

    def to_json(self) -> str:
        """A JSON document that :meth:`from_json` turns back into an equal entry."""
        doc = {"v": JSON_VERSION, **self.to_dict()}
        for key in ("at", "start_at"):
            if key in doc:
                doc[key] = doc[key].isoformat()
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Entry:
        """Decode :meth:`to_json` output; a bad document raises :class:`ScheduleEntryError`."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ScheduleEntryError(None, f"stored entry is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ScheduleEntryError(None, "stored entry is not a JSON object")
        version = doc.pop("v", None)
        if version != JSON_VERSION:
            name = doc.get("name")
            raise ScheduleEntryError(
                name if isinstance(name, str) else None, f"unsupported JSON version {version!r}"
            )
        return entry_from_mapping(doc)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """Build an entry from the flat mapping form (the keys of a ``[[schedule]]`` table)."""
        return entry_from_mapping(data)


def entry_from_mapping(data: Mapping[str, Any], *, index: int | None = None) -> Entry:
    """Build one entry from its flat mapping (a ``[[schedule]]`` table or stored JSON).

    ``index`` (1-based position in a file) labels the error when the entry has no name.
    Raises :class:`~stem.schedule.entries.ScheduleEntryError` naming the entry and problem.
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


def _check_seconds(value: object, what: str, *, allow_zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "positive"
        raise ConfigError(f"{what} must be {bound}, got {value!r}")
