"""The schedule model of ``stem beat``: entries, their ticks, and what is due when.

Pure code, below the app: no Redis, no broker, no actor, and no clock (time is passed
in). It imports nothing from stem but :mod:`stem.errors`; the actor that stores entries
and fires their ticks is :mod:`stem.beat`, above the app. A tick is an instant identified by
its UTC epoch milliseconds; every beat replica computes the same ticks, fire times and
job ids for the same entry, so replicas need no coordination beyond the broker's dedupe
on job id. See :mod:`stem.schedule.ticks` for the missed-run and jitter rules and
:mod:`stem.schedule.wallclock` for daylight-saving days.
"""

from stem.schedule.config import (
    entries_from_tables,
    load_entries_from_toml,
    load_entries_from_toml_strict,
)
from stem.schedule.entries import (
    DEFAULT_GRACE_S,
    Entry,
    MissedPolicy,
    ScheduleEntryError,
    entry_from_mapping,
    job_id_for_tick,
)
from stem.schedule.schedules import Cron, Interval, Once, Schedule
from stem.schedule.ticks import (
    BeatPlan,
    DueTick,
    EntryPlan,
    due_ticks,
    fire_at_ms,
    jitter_ms,
    next_ticks,
    plan_beat,
    plan_entry,
    utc_now,
)

__all__ = [
    "DEFAULT_GRACE_S",
    "BeatPlan",
    "Cron",
    "DueTick",
    "Entry",
    "EntryPlan",
    "Interval",
    "MissedPolicy",
    "Once",
    "Schedule",
    "ScheduleEntryError",
    "due_ticks",
    "entries_from_tables",
    "entry_from_mapping",
    "fire_at_ms",
    "jitter_ms",
    "job_id_for_tick",
    "load_entries_from_toml",
    "load_entries_from_toml_strict",
    "next_ticks",
    "plan_beat",
    "plan_entry",
    "utc_now",
]
