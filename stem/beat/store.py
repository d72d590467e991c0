"""The schedule store's documents, and the operations beat and the CLI perform on them.

Two string maps (the broker's ``ScheduleStore`` role): definitions and run records.

**Definition** (``Keys.schedule``, entry name -> JSON): the entry's flat keys (as in
``stem.toml``, see :meth:`Entry.to_json`) plus ``source`` (``code``, ``file`` or ``cli``:
who owns it) and, once an operator ran ``stem schedule enable|disable``, ``switched``:
the enabled flag the operator chose, which wins over the definition's and survives the
next sync, so a restarted beat does not undo it.

**Sources.** A beat syncs the entries of its code (``app.schedules``) and of its file
(``--config stem.toml``) at start: each synced source replaces its own previous entries
(a name no longer declared is deleted), and entries of the other sources stay. Code and
file own their names: a CLI entry of the same name is replaced (and a warning says so);
``stem schedule add`` refuses a name that code or file owns.

**Run record** (``Keys.schedule_state``, entry name -> JSON): ``last_tick_ms`` (the last
tick fired; every replica reads it, so a replica that starts late does not fire a tick
again), ``last_run`` (tick, job id, when, drift, by which beat, manual or not) and
``drifts_ms`` (the newest :data:`KEEP_DRIFTS` drifts, for metrics).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from stem.broker import DefinitionChange
from stem.errors import NotFound
from stem.schedule.entries import JSON_VERSION, Entry, ScheduleEntryError, entry_from_mapping

if TYPE_CHECKING:
    from stem.broker import ScheduleHost
    from stem.schedule.ticks import DueTick

#: How many recent drifts an entry's run record keeps.
KEEP_DRIFTS = 100


class Source(enum.Enum):
    """Who owns a stored entry."""

    CODE = "code"
    FILE = "file"
    CLI = "cli"


@dataclass(frozen=True)
class StoredEntry:
    """A stored definition: the entry as declared, its source, and the operator's switch
    (``stem schedule enable|disable``; None until an operator used it)."""

    entry: Entry
    source: Source
    switched: bool | None = None

    @property
    def name(self) -> str:
        """The entry's name."""
        return self.entry.name

    @property
    def enabled(self) -> bool:
        """Whether beat fires it: the operator's switch, else the declared flag."""
        return self.entry.enabled if self.switched is None else self.switched

    def effective(self) -> Entry:
        """The entry as beat runs it (its ``enabled`` is :attr:`enabled`)."""
        if self.entry.enabled == self.enabled:
            return self.entry
        return replace(self.entry, enabled=self.enabled)

    def to_json(self) -> str:
        """The stored document (sorted keys: equal entries store equal strings)."""
        doc: dict[str, Any] = json.loads(self.entry.to_json())
        doc["source"] = self.source.value
        if self.switched is not None:
            doc["switched"] = self.switched
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, name: str, raw: str) -> StoredEntry:
        """Decode a stored definition; raise :class:`ScheduleEntryError` naming ``name``."""
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise ScheduleEntryError(name, f"stored entry is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ScheduleEntryError(name, "stored entry is not a JSON object")
        if doc.pop("v", None) != JSON_VERSION:
            raise ScheduleEntryError(name, "stored entry has an unsupported version")
        try:
            source = Source(doc.pop("source", Source.CLI.value))
        except ValueError:
            raise ScheduleEntryError(name, "stored entry has an unknown source") from None
        switched = doc.pop("switched", None)
        if switched is not None and not isinstance(switched, bool):
            raise ScheduleEntryError(name, f"switched must be true or false, got {switched!r}")
        if doc.get("name") != name:
            raise ScheduleEntryError(name, f"stored under {name!r} but named {doc.get('name')!r}")
        entry = entry_from_mapping(doc)
        return cls(entry, source, switched)


@dataclass(frozen=True)
class LastRun:
    """One run of an entry: a tick (``tick_ms`` set) or a manual run (``manual``).

    ``fired_at_ms`` is the server's time when the run was recorded, right after the
    enqueue; ``drift_ms`` is that minus the tick's fire time (tick + jitter).
    """

    job_id: str
    fired_at_ms: int
    by: str
    tick_ms: int | None = None
    drift_ms: int | None = None
    manual: bool = False
    catch_up: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as stored, and as ``--json`` prints it)."""
        return {
            "job_id": self.job_id,
            "fired_at_ms": self.fired_at_ms,
            "by": self.by,
            "tick_ms": self.tick_ms,
            "drift_ms": self.drift_ms,
            "manual": self.manual,
            "catch_up": self.catch_up,
        }


@dataclass(frozen=True)
class RunRecord:
    """What the store knows about an entry's runs (see the module docstring)."""

    last_tick_ms: int | None = None
    last_run: LastRun | None = None
    drifts_ms: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, raw: str) -> RunRecord:
        """Decode a stored record; a damaged one reads as empty (the entry never ran)."""
        try:
            doc = json.loads(raw)
            run = doc.get("last_run")
            return cls(
                last_tick_ms=_opt_int(doc.get("last_tick_ms")),
                last_run=None if not isinstance(run, dict) else _last_run(run),
                drifts_ms=tuple(int(d) for d in doc.get("drifts_ms") or ()),
            )
        except (ValueError, TypeError, AttributeError, KeyError):
            return cls()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as ``--json`` prints it)."""
        return {
            "last_tick_ms": self.last_tick_ms,
            "last_run": None if self.last_run is None else self.last_run.to_dict(),
            "drifts_ms": list(self.drifts_ms),
        }


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _last_run(doc: Mapping[str, Any]) -> LastRun:
    return LastRun(
        job_id=str(doc["job_id"]),
        fired_at_ms=int(doc["fired_at_ms"]),
        by=str(doc.get("by", "")),
        tick_ms=_opt_int(doc.get("tick_ms")),
        drift_ms=_opt_int(doc.get("drift_ms")),
        manual=bool(doc.get("manual", False)),
        catch_up=bool(doc.get("catch_up", False)),
    )


@dataclass(frozen=True)
class Snapshot:
    """The whole store, decoded: good entries, bad ones (with their error), run records.

    ``new_errors`` are the bad entries that are new or changed since the previous
    snapshot taken through the same :class:`Schedules` (so a running beat reports each
    bad entry once, not once per loop).
    """

    entries: dict[str, StoredEntry]
    errors: dict[str, ScheduleEntryError]
    records: dict[str, RunRecord]
    new_errors: tuple[ScheduleEntryError, ...] = ()

    def last_ticks(self) -> dict[str, int]:
        """Entry name -> last fired tick, for :func:`stem.schedule.ticks.plan_beat`."""
        return {
            name: record.last_tick_ms
            for name, record in self.records.items()
            if record.last_tick_ms is not None
        }


def plan_sync(
    current: Mapping[str, str], source: Source, entries: Sequence[Entry]
) -> DefinitionChange:
    """How syncing ``entries`` as ``source`` changes the stored ``current`` definitions.

    Entries of ``source`` no longer declared are deleted; declared ones are written when
    they differ (keeping the operator's switch); other sources' entries stay, except a
    name taken by a declared entry. ``result`` is the list of warnings (one line each).
    """
    warnings: list[str] = []
    change = DefinitionChange(result=warnings)
    declared = {entry.name for entry in entries}
    for name, text in sorted(current.items()):
        if name not in declared and _peek(text)[0] is source:
            change.deletes.append(name)
    for entry in entries:
        raw = current.get(entry.name)
        old_source, switched = _peek(raw)
        if old_source is not None and old_source is not source:
            warnings.append(
                f"schedule entry {entry.name!r}: the {source.value} entry replaces "
                f"the {old_source.value} entry of that name"
            )
        keep = switched if old_source is source else None
        new = StoredEntry(entry, source, keep).to_json()
        if new != raw:
            change.puts[entry.name] = new
    return change


def _peek(raw: str | None) -> tuple[Source | None, bool | None]:
    """The source and switch of a stored definition, tolerating damaged documents."""
    if raw is None:
        return None, None
    try:
        doc = json.loads(raw)
        switched = doc.get("switched")
        return Source(doc.get("source", Source.CLI.value)), (
            switched if isinstance(switched, bool) else None
        )
    except (ValueError, AttributeError):
        return None, None


def unknown_entry(name: str) -> NotFound:
    """The error for a name that is not in the store (exit code 4 at the CLI)."""
    return NotFound(f"no schedule entry named {name!r}")


class Schedules:
    """Typed operations on one namespace's schedule store (blocking; see the broker's).

    Decoded definitions are cached by their stored text, so reading the store every
    second costs one round trip and no parsing when nothing changed.
    """

    def __init__(self, broker: ScheduleHost) -> None:
        self.store = broker.schedule_store()
        self._defs: dict[str, tuple[str, StoredEntry | ScheduleEntryError]] = {}
        self._records: dict[str, tuple[str, RunRecord]] = {}

    # -- reading --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Read and decode the whole store (one round trip)."""
        raw = self.store.read()
        entries: dict[str, StoredEntry] = {}
        errors: dict[str, ScheduleEntryError] = {}
        new_errors: list[ScheduleEntryError] = []
        defs: dict[str, tuple[str, StoredEntry | ScheduleEntryError]] = {}
        for name, text in raw.definitions.items():
            cached = self._defs.get(name)
            if cached is not None and cached[0] == text:
                decoded = cached[1]
            else:
                decoded = _decode(name, text)
                if isinstance(decoded, ScheduleEntryError):
                    new_errors.append(decoded)
            defs[name] = (text, decoded)
            if isinstance(decoded, StoredEntry):
                entries[name] = decoded
            else:
                errors[name] = decoded
        self._defs = defs
        records: dict[str, tuple[str, RunRecord]] = {}
        for name, text in raw.states.items():
            cached_record = self._records.get(name)
            if cached_record is not None and cached_record[0] == text:
                records[name] = cached_record
            else:
                records[name] = (text, RunRecord.from_json(text))
        self._records = records
        decoded_records = {name: record for name, (_, record) in records.items()}
        return Snapshot(entries, errors, decoded_records, tuple(new_errors))

    def get(self, name: str) -> StoredEntry:
        """One entry; :class:`NotFound` if there is none, its own error if it is bad."""
        raw = self.store.definition(name)
        if raw is None:
            raise unknown_entry(name)
        return StoredEntry.from_json(name, raw)

    def record(self, name: str) -> RunRecord:
        """The run record of ``name`` (empty if it never ran)."""
        raw = self.store.state(name)
        return RunRecord() if raw is None else RunRecord.from_json(raw)

    # -- writing --------------------------------------------------------------------

    def sync(self, source: Source, entries: Sequence[Entry]) -> list[str]:
        """Make ``source``'s stored entries equal ``entries``; return warnings (lines)."""
        frozen = tuple(entries)
        change = self.store.change_definitions(lambda cur: plan_sync(cur, source, frozen))
        warnings: list[str] = change.result
        return warnings

    def add(self, entry: Entry, *, replace_existing: bool = False) -> None:
        """Store a CLI entry; refuse a name that exists (unless ``replace_existing``) or
        that code or a file owns."""

        def compute(current: dict[str, str]) -> DefinitionChange:
            owner, _ = _peek(current.get(entry.name))
            if owner in (Source.CODE, Source.FILE):
                raise ScheduleEntryError(
                    entry.name,
                    f"declared in {owner.value}; change it there "
                    "(stem schedule enable/disable switch it at run time)",
                )
            if entry.name in current and not replace_existing:
                raise ScheduleEntryError(entry.name, "already exists (use --replace)")
            return DefinitionChange(puts={entry.name: StoredEntry(entry, Source.CLI).to_json()})

        self.store.change_definitions(compute)

    def remove(self, name: str) -> StoredEntry | ScheduleEntryError:
        """Delete an entry and its run record; return what was stored."""

        def compute(current: dict[str, str]) -> DefinitionChange:
            if name not in current:
                raise unknown_entry(name)
            return DefinitionChange(deletes=[name], result=_decode(name, current[name]))

        removed: StoredEntry | ScheduleEntryError = self.store.change_definitions(compute).result
        return removed

    def set_enabled(self, name: str, enabled: bool) -> StoredEntry:
        """Switch an entry on or off; the switch survives syncs from code and file."""

        def compute(current: dict[str, str]) -> DefinitionChange:
            if name not in current:
                raise unknown_entry(name)
            stored = replace(StoredEntry.from_json(name, current[name]), switched=enabled)
            return DefinitionChange(puts={name: stored.to_json()}, result=stored)

        switched: StoredEntry = self.store.change_definitions(compute).result
        return switched

    def record_tick(self, due: DueTick, job_id: str, by: str) -> int | None:
        """Record a tick this beat enqueued; return its drift (ms)."""
        run = LastRun(job_id, 0, by, tick_ms=due.tick_ms, catch_up=due.catch_up)
        return self.store.record_run(
            due.entry.name,
            _run_json(run),
            tick_ms=due.tick_ms,
            fire_at_ms=due.fire_at_ms,
            keep_drifts=KEEP_DRIFTS,
        )

    def record_manual(self, name: str, job_id: str, by: str) -> None:
        """Record a manual run (``stem schedule run``); the last tick does not move."""
        run = LastRun(job_id, 0, by, manual=True)
        self.store.record_run(
            name, _run_json(run), tick_ms=None, fire_at_ms=None, keep_drifts=KEEP_DRIFTS
        )


def _decode(name: str, raw: str) -> StoredEntry | ScheduleEntryError:
    try:
        return StoredEntry.from_json(name, raw)
    except ScheduleEntryError as exc:
        return exc


def _run_json(run: LastRun) -> str:
    doc = run.to_dict()
    del doc["fired_at_ms"], doc["drift_ms"]  # the script stamps both (server clock)
    return json.dumps(doc, separators=(",", ":"))
