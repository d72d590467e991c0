"""Entries declared in code: what ``Stem.schedule`` builds from its keyword arguments.

::

    app.schedule("reports.nightly", cron="30 2 * * *", tz="Europe/Berlin", jitter_s=60)

    @app.schedule(every_s=30)              # the entry is named after the task
    @app.task
    def ping() -> None: ...

The keywords are the keys of a ``[[schedule]]`` table in ``stem.toml`` (one vocabulary
for code, file and CLI), so an entry is checked by the same code wherever it comes from,
and a bad one is refused with a :class:`~stem.schedule.entries.ScheduleEntryError` that
names it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypedDict

from stem.schedule.entries import Entry, MissedPolicy, ScheduleEntryError, entry_from_mapping


class TaskLike(Protocol):
    """What an entry needs of a task (``stem.Task`` has it): the schedule model sits below
    the app, so it names the fields it reads instead of importing ``stem.task``."""

    @property
    def name(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...


class ScheduleOptions(TypedDict, total=False):
    """The keywords of ``Stem.schedule``: one schedule kind, then optional settings.

    Exactly one of ``every_s`` (with optional ``start_at``), ``cron`` (with optional
    ``tz``, default UTC) or ``at``. ``name`` defaults to the task's name; ``queue`` and
    ``priority`` to the task's; ``jitter_s`` to 0; ``grace_s`` to 10 s; ``missed`` to
    ``"skip"``; ``enabled`` to True.
    """

    name: str
    every_s: float
    start_at: datetime
    cron: str
    tz: str
    at: datetime
    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    queue: str
    priority: int
    jitter_s: float
    enabled: bool
    missed: MissedPolicy | str
    grace_s: float


def declare_entry(task: TaskLike | str, options: ScheduleOptions) -> Entry:
    """The entry that enqueues ``task`` (a Task or a task name) on ``options``' schedule.

    Raises :class:`ScheduleEntryError` naming the entry when an option is missing, unknown
    or invalid.
    """
    task_name = task if isinstance(task, str) else task.name
    data: dict[str, Any] = {"name": task_name, "task": task_name}
    if not isinstance(task, str) and "queue" not in options:
        # The beat process may run another app object than the one that declared the
        # entry: carry the task's queue so every replica enqueues (and dedupes) on it.
        data["queue"] = task.queue
        if task.priority and "priority" not in options:
            data["priority"] = task.priority
    data.update(options)
    if isinstance(data.get("missed"), MissedPolicy):
        data["missed"] = data["missed"].value
    if isinstance(data.get("args"), Sequence) and not isinstance(data["args"], str):
        data["args"] = list(data["args"])
    return entry_from_mapping(data)


def check_new_entry(existing: Sequence[Entry], entry: Entry) -> None:
    """Refuse ``entry`` if ``existing`` already has an entry with its name."""
    if any(e.name == entry.name for e in existing):
        raise ScheduleEntryError(entry.name, "an entry with this name is already declared")
