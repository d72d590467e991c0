"""The beat actor: enqueue each tick of each schedule entry, exactly once across replicas.

At start a beat syncs the entries declared in code (``app.schedules``) and in its file
(``--config stem.toml``) into the schedule store (:mod:`stem.beat.store`). Then it loops:
read the store (one round trip), plan with :func:`stem.schedule.ticks.plan_beat`, enqueue
what is due, sleep until the next fire time but never longer than ``reload_s`` (1 s), so
``stem schedule add|remove|enable|disable`` reach every running beat within a second.

**Exactly once per tick, with no lock.** Any number of beats may run. Each one enqueues a
due tick with ``job_id`` and ``idempotency_key`` both set to the tick's derived id
(``beat:<entry>:<tick_ms>``); the enqueue script sets the idempotency key (``SET NX``
semantics) and adds the job in one atomic step, so exactly one replica creates the job
and the others get ``created=False``. The winner records the run (tick, job id, drift)
in the store; every replica reads it, so one that starts late does not fire the tick
again (and if it did, the key would refuse it). Nothing rests on a leader or a lease: a
beat that dies mid-tick either enqueued the job or did not, and the others fire the tick
within its grace window.

**Errors.** A bad entry (in the file at start, or in the store at any time) is logged
once, in one line that names it, and skipped; the other entries keep firing. Redis
being unreachable is logged and retried every second; ticks missed meanwhile follow
their entry's missed-run policy. Cancelling ``serve_beat`` lets the round in progress
finish (an enqueue is never cut in half) and holds no other resource.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from os import PathLike
from typing import TYPE_CHECKING

import trio

from stem.beat.store import Schedules, Source, StoredEntry
from stem.errors import BrokerUnavailable, StemError
from stem.observe.heartbeat import touch_supervisor_heartbeat
from stem.observe.metrics import observe_gauge
from stem.observe.presence import serve_presence
from stem.observe.tracing import Tracing, open_root_span
from stem.runtime import run_actor
from stem.schedule.config import load_entries_from_toml
from stem.schedule.entries import Entry, ScheduleEntryError
from stem.schedule.ticks import DueTick, fire_at_ms, plan_entry, utc_now

if TYPE_CHECKING:
    from stem.app import Stem
    from stem.handle import JobHandle

log = logging.getLogger("stem.beat")

#: Longest sleep between two reads of the store (how fast CLI changes take effect).
RELOAD_S = 1.0
#: Pause after Redis could not be reached, before the next round.
RETRY_S = 1.0
#: The idempotency key of a tick outlives any window in which a replica could fire it.
MIN_IDEMPOTENCY_TTL_S = 86_400


def idempotency_ttl_s(entry: Entry, tick_ms: int) -> int:
    """How long the per-tick key lives: at least a day, ten periods, ten grace windows."""
    following = entry.schedule.next_tick_ms_after(tick_ms)
    period_s = 0.0 if following is None else (following - tick_ms) / 1000
    window_s = entry.jitter_s + entry.grace_s
    return max(MIN_IDEMPOTENCY_TTL_S, math.ceil(10 * period_s), math.ceil(10 * window_s))


def last_fired_by(entry: Entry, t_ms: int) -> int | None:
    """The latest tick of ``entry`` whose (jittered) fire time is at or before ``t_ms``."""
    tick = entry.schedule.last_tick_ms_at_or_before(t_ms)
    # Jitter can push a few of the latest ticks past t_ms (more only if jitter > period).
    for _ in range(1000):
        if tick is None or fire_at_ms(entry, tick) <= t_ms:
            break
        tick = entry.schedule.last_tick_ms_at_or_before(tick - 1)
    return tick


def enqueue_entry(app: Stem, entry: Entry, due: DueTick | None = None) -> JobHandle:
    """Enqueue ``entry``'s task: for tick ``due`` under its derived id, else a manual run.

    A tick's enqueue is idempotent: ``handle.created`` is False when any replica already
    enqueued that tick.
    """
    job_id = None if due is None else due.job_id
    return app.enqueue(
        entry.task,
        entry.args,
        dict(entry.kwargs),
        queue=entry.queue,
        priority=entry.priority,
        job_id=job_id,
        idempotency_key=job_id,
        idempotency_ttl_s=None if due is None else idempotency_ttl_s(entry, due.tick_ms),
    )


def default_beat_name() -> str:
    """``beat/<host>/<pid>``: how a beat signs the runs it records."""
    return f"beat/{socket.gethostname()}/{os.getpid()}"


@dataclass(frozen=True)
class BeatStatistics:
    """Counters of one beat since it started."""

    #: Reads of the schedule store (one per round).
    rounds: int
    #: Good entries and bad (skipped) entries in the last read.
    entries: int
    bad_entries: int
    #: Ticks this beat enqueued, and ticks another replica had enqueued first.
    fired: int
    already_fired: int
    #: Ticks skipped because their entry failed when planned or enqueued.
    failed: int
    #: How late the last tick this beat fired was (s), and when it fired (epoch ms);
    #: None before the first. ``stem_beat_drift_seconds`` reads them from presence.
    last_drift_s: float | None = None
    last_fired_ms: int | None = None


class Beat:
    """One beat replica's state and rounds; :func:`serve_beat` runs them on a timer.

    The blocking methods (``sync``, ``round``) talk to Redis; run them in a thread.
    """

    def __init__(
        self, app: Stem, *, config_path: str | PathLike[str] | None = None, name: str | None = None
    ) -> None:
        self.app = app
        self.config_path = config_path
        self.name = name or default_beat_name()
        self.schedules = Schedules(app.broker)
        # Last tick fired per entry, as this replica saw it (the store may lag behind).
        self._fired: dict[str, int] = {}
        # Problems already reported, per entry: each is logged once, not once per round.
        self._reported: dict[str, str] = {}
        # When this beat first saw each enabled entry that has never fired (epoch ms).
        self._first_seen: dict[str, int] = {}
        self._rounds = self._fired_count = self._already = self._failed = 0
        self._entries = self._bad = 0
        self._last_drift_s: float | None = None
        self._last_fired_ms: int | None = None
        self._tracing = next((m for m in app.middleware if isinstance(m, Tracing)), None)
        observe_gauge("stem.beat.drift", "s", "How late the last tick fired.", self._drift)

    def _drift(self) -> list[tuple[float, dict[str, str]]]:
        drift = self._last_drift_s
        return [] if drift is None else [(drift, {"stem.beat": self.name})]

    def statistics(self) -> BeatStatistics:
        """The counters now."""
        return BeatStatistics(
            self._rounds,
            self._entries,
            self._bad,
            self._fired_count,
            self._already,
            self._failed,
            self._last_drift_s,
            self._last_fired_ms,
        )

    # -- start ----------------------------------------------------------------------

    def sync(self) -> int:
        """Sync code and file entries into the store; return how many were declared.

        Bad file entries are reported (one line each) and left out. Raises
        :class:`ConfigError` when the file cannot be read or parsed at all.
        """
        code = list(self.app.schedules)
        warnings: list[str] = []
        if code:
            warnings += self.schedules.sync(Source.CODE, code)
        declared = len(code)
        if self.config_path is not None:
            entries = self._file_entries({e.name for e in code})
            warnings += self.schedules.sync(Source.FILE, entries)
            declared += len(entries)
        for line in warnings:
            log.warning("%s", line)
        return declared

    def _file_entries(self, code_names: set[str]) -> list[Entry]:
        assert self.config_path is not None  # noqa: S101  (narrows a type; callers check it)
        path = os.fspath(self.config_path)
        entries, errors = load_entries_from_toml(path)
        for error in errors:
            log.error("%s: %s (skipped)", path, error)
        kept = []
        for entry in entries:
            if entry.name in code_names:
                clash = ScheduleEntryError(entry.name, "also declared in code (the code wins)")
                log.error("%s: %s (skipped)", path, clash)
            else:
                kept.append(entry)
        return kept

    # -- rounds ---------------------------------------------------------------------

    def round(self) -> int | None:
        """Read the store, enqueue every due tick; return the next fire time (epoch ms)."""
        snapshot = self.schedules.snapshot()
        self._rounds += 1
        self._entries, self._bad = len(snapshot.entries), len(snapshot.errors)
        for error in snapshot.new_errors:
            log.error("%s (skipped)", error)
        last = snapshot.last_ticks()
        self._fired = {n: t for n, t in self._fired.items() if n in snapshot.entries}
        for name, tick_ms in self._fired.items():
            last[name] = max(tick_ms, last.get(name, tick_ms))
        self._start_new_entries(snapshot.entries.values(), last)
        due, wake_at_ms = self._plan(snapshot.entries.values(), last)
        for tick in due:
            self._fire(tick)
        return wake_at_ms

    def _start_new_entries(self, entries: Iterable[StoredEntry], last: dict[str, int]) -> None:
        # An entry that never fired starts at the moment this beat first saw it enabled:
        # without that, a new entry would fire every tick of the last grace window at
        # once. Replicas that first saw it at other moments may disagree about the first
        # tick or two; the one that fires them fires them once.
        now_ms = time.time_ns() // 1_000_000
        seen = self._first_seen
        self._first_seen = {}
        for stored in entries:
            if stored.name in last or not stored.enabled:
                continue
            since_ms = self._first_seen[stored.name] = seen.get(stored.name, now_ms)
            baseline = last_fired_by(stored.entry, since_ms)
            if baseline is not None:
                last[stored.name] = baseline

    def _plan(
        self, entries: Iterable[StoredEntry], last: Mapping[str, int]
    ) -> tuple[list[DueTick], int | None]:
        # plan_beat, entry by entry, so that one entry that fails cannot stop the others.
        now = utc_now()
        due: list[DueTick] = []
        wakes: list[int] = []
        for stored in entries:
            try:
                plan = plan_entry(stored.effective(), last.get(stored.name), now)
            except Exception as exc:
                self._report(stored.name, f"cannot compute its ticks: {exc!r}")
                continue
            due.extend(plan.due)
            if plan.wake_at_ms is not None:
                wakes.append(plan.wake_at_ms)
        due.sort(key=lambda d: (d.fire_at_ms, d.tick_ms, d.entry.name))
        return due, min(wakes, default=None)

    def _fire(self, due: DueTick) -> None:
        # Each tick starts a trace: its enqueue's send span, and the job's spans, hang under it.
        attributes: dict[str, str | int] = {
            "stem.schedule.entry": due.entry.name,
            "stem.schedule.tick_ms": due.tick_ms,
        }
        with open_root_span(self._tracing, f"tick {due.entry.name}", attributes):
            self._fire_in_span(due)

    def _fire_in_span(self, due: DueTick) -> None:
        name = due.entry.name
        try:
            handle = enqueue_entry(self.app, due.entry, due)
        except BrokerUnavailable:
            raise  # the whole round is retried
        except (StemError, ValueError, TypeError) as exc:
            self._failed += 1
            self._fired[name] = due.tick_ms  # give the tick up rather than retry it forever
            self._report(name, f"cannot enqueue: {exc}")
            return
        self._fired[name] = due.tick_ms
        if not handle.created:
            self._already += 1
            return
        self._fired_count += 1
        drift_ms = self.schedules.record_tick(due, handle.id, self.name)
        now_ms = time.time_ns() // 1_000_000
        self._last_fired_ms = now_ms
        self._last_drift_s = (
            max(0, now_ms - due.fire_at_ms if drift_ms is None else drift_ms) / 1000
        )
        log.info("%s: fired %s (drift %s ms)", name, handle.id, drift_ms)
        self._reported.pop(name, None)

    def _report(self, name: str, problem: str) -> None:
        if self._reported.get(name) != problem:
            self._reported[name] = problem
            log.error("%s (skipped)", ScheduleEntryError(name, problem))


def sleep_s(wake_at_ms: int | None, reload_s: float) -> float:
    """How long to sleep: until ``wake_at_ms``, but at most ``reload_s``."""
    if wake_at_ms is None:
        return reload_s
    return min(reload_s, max(0.0, (wake_at_ms - time.time_ns() // 1_000_000) / 1000))


async def serve_beat(
    app: Stem,
    *,
    config_path: str | PathLike[str] | None = None,
    name: str | None = None,
    reload_s: float = RELOAD_S,
    task_status: trio.TaskStatus[Beat] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Sync the entries, then fire due ticks until cancelled.

    ``task_status.started`` hands over the :class:`Beat` (for its ``statistics()``) once
    the entries are synced. Raises :class:`ConfigError` if ``config_path`` cannot be read.
    """
    beat = Beat(app, config_path=config_path, name=name)
    while True:
        try:
            declared = await trio.to_thread.run_sync(beat.sync)
            break
        except BrokerUnavailable as exc:
            log.warning("%s (retrying in %g s)", exc, RETRY_S)
            touch_supervisor_heartbeat()  # alive and retrying: not a hung process
            await trio.sleep(RETRY_S)
    log.info("%s started: %d entries declared in code and file", beat.name, declared)
    async with trio.open_nursery() as nursery:

        def stats() -> dict[str, int | float | None]:
            return asdict(beat.statistics())

        nursery.start_soon(serve_presence, app.broker, "beat", beat.name, stats)
        task_status.started(beat)
        await _tick_loop(beat, reload_s)


async def _tick_loop(beat: Beat, reload_s: float) -> None:
    while True:
        try:
            wake_at_ms = await trio.to_thread.run_sync(beat.round)
        except BrokerUnavailable as exc:
            log.warning("%s (retrying in %g s)", exc, RETRY_S)
            touch_supervisor_heartbeat()
            await trio.sleep(RETRY_S)
            continue
        touch_supervisor_heartbeat()
        await trio.sleep(sleep_s(wake_at_ms, reload_s))


def run(
    app: Stem,
    *,
    config_path: str | PathLike[str] | None = None,
    name: str | None = None,
    reload_s: float = RELOAD_S,
) -> int:
    """Run a beat in this process until SIGTERM/SIGINT; return the exit code (0).

    Raises :class:`ConfigError` (before or after start) when the file cannot be read.
    """
    if config_path is not None:
        # Fail here, as a plain ConfigError (the CLI's exit 2), not from inside trio.
        load_entries_from_toml(config_path)

    async def serve(nursery: trio.Nursery) -> None:
        await serve_beat(app, config_path=config_path, name=name, reload_s=reload_s)

    details = {"config": config_path or "-", "name": name or "auto"}
    return run_actor("beat", app, serve, details=details)
