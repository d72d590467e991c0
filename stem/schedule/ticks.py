"""Which ticks fire now, and when: missed-run policy, jitter, and the plan beat follows.

Everything here is a pure function of its arguments; time is passed in (``now``), never
read, except by :func:`utc_now` for the caller at the edge. Ticks are epoch milliseconds.

**Fire time.** A tick fires at ``tick_ms + jitter_ms(...)``. The jitter is derived from a
hash of (entry name, tick), not drawn at random, so every replica computes the same fire
time: replicas wake together, and the derived job id makes the tick run once anyway.
Different entries (and different ticks of one entry) get different offsets, which is
what spreads a thundering herd of entries that share a tick.

**On time or missed.** A tick is *on time* while ``now - tick_ms <= jitter_s + grace_s``:
its fire time came at most ``grace_s`` ago (the jitter part keeps ticks in order, below).
Older ticks were *missed*: beat was down, or Redis was unreachable, for longer than the
grace. ``grace_s`` (default 10 s) absorbs hiccups (a GC pause, a slow Redis reply, a
failover) that must not cost a tick; anything longer is downtime, and the entry's
:class:`~stem.schedule.entries.MissedPolicy` decides: ``SKIP`` drops missed ticks,
``RUN_ONCE`` fires the latest missed tick, unless an on-time tick is due now anyway
(that run is the catch-up). With no last tick (a first start) nothing was missed.

**Order.** Ticks of an entry fire in tick order: a tick whose fire time has passed waits
for an earlier tick whose (jittered) fire time has not. So "the last fired tick" is a
complete record of progress: every tick at or before it was fired or given up.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from stem.schedule.entries import Entry, MissedPolicy
from stem.schedule.wallclock import from_ms, to_ms


def utc_now() -> datetime:
    """The current time, aware UTC: the one place beat reads the clock."""
    return from_ms(time.time_ns() // 1_000_000)


def jitter_ms(entry_name: str, tick_ms: int, jitter_s: float) -> int:
    """Deterministic delay for one tick, uniform in ``[0, jitter_s)``, in milliseconds."""
    span_ms = round(jitter_s * 1000)
    if span_ms <= 0:
        return 0
    key = f"{entry_name}\x00{tick_ms}".encode()
    digest = hashlib.blake2b(key, digest_size=8, person=b"stem-beat").digest()
    # Scale 64 uniform bits onto the span: unbiased enough (< 2**-40) and integer-exact.
    return (int.from_bytes(digest, "big") * span_ms) >> 64


def fire_at_ms(entry: Entry, tick_ms: int) -> int:
    """When ``entry``'s tick ``tick_ms`` fires: the tick plus its deterministic jitter."""
    return tick_ms + jitter_ms(entry.name, tick_ms, entry.jitter_s)


@dataclass(frozen=True)
class DueTick:
    """One tick to enqueue now; ``catch_up`` marks a missed tick fired by ``RUN_ONCE``."""

    entry: Entry
    tick_ms: int
    fire_at_ms: int
    catch_up: bool = False

    @property
    def job_id(self) -> str:
        """The derived job id, also the idempotency key (see ``job_id_for_tick``)."""
        return self.entry.job_id(self.tick_ms)


@dataclass(frozen=True)
class EntryPlan:
    """What one entry does at ``now``: ticks to fire now, and when to look again."""

    due: tuple[DueTick, ...]
    wake_at_ms: int | None


@dataclass(frozen=True)
class BeatPlan:
    """What a beat replica does at ``now``, over all its entries.

    ``due`` is ordered by fire time (then tick, then name). ``wake_at_ms`` is the earliest
    fire time still to come, assuming the due ticks are recorded as fired; None when no
    enabled entry will ever fire again. Recompute the plan after firing, at wake-up, and
    whenever the entries change.
    """

    due: tuple[DueTick, ...]
    wake_at_ms: int | None


def plan_entry(entry: Entry, last_tick_ms: int | None, now: datetime) -> EntryPlan:
    """The ticks of ``entry`` due at ``now``, given the last tick fired (None: never)."""
    if not entry.enabled:
        return EntryPlan((), None)
    now_ms = to_ms(now)
    schedule = entry.schedule
    # Ticks before `lo` are missed; from `lo` on they are on time (module docstring).
    lo = now_ms - round((entry.jitter_s + entry.grace_s) * 1000)
    on_time: list[DueTick] = []
    wake_at_ms: int | None = None
    # Scan only the on-time window: the cost stays bounded however long beat was down.
    scan_from = lo - 1 if last_tick_ms is None else max(last_tick_ms, lo - 1)
    tick = schedule.next_tick_ms_after(scan_from)
    while tick is not None:
        fire_ms = fire_at_ms(entry, tick)
        if fire_ms > now_ms:
            wake_at_ms = fire_ms
            break
        on_time.append(DueTick(entry, tick, fire_ms))
        tick = schedule.next_tick_ms_after(tick)
    if on_time or last_tick_ms is None or entry.missed is MissedPolicy.SKIP:
        return EntryPlan(tuple(on_time), wake_at_ms)
    missed = schedule.last_tick_ms_at_or_before(lo - 1)
    if missed is None or missed <= last_tick_ms:
        return EntryPlan((), wake_at_ms)
    return EntryPlan(
        (DueTick(entry, missed, fire_at_ms(entry, missed), catch_up=True),), wake_at_ms
    )


def due_ticks(entry: Entry, last_tick_ms: int | None, now: datetime) -> list[int]:
    """The ticks (epoch ms) of ``entry`` to fire at ``now``, in order (see module docs)."""
    return [due.tick_ms for due in plan_entry(entry, last_tick_ms, now).due]


def plan_beat(entries: Iterable[Entry], last_ticks: Mapping[str, int], now: datetime) -> BeatPlan:
    """What to enqueue at ``now`` and when to wake next, for all ``entries``.

    ``last_ticks`` maps entry names to the last tick fired (absent: never fired). The
    caller enqueues each :class:`DueTick` with ``job_id=due.job_id`` (dedupe across
    replicas), records its ``tick_ms`` as the entry's last tick, and sleeps until
    ``wake_at_ms`` (or until the entries change).
    """
    due: list[DueTick] = []
    wakes: list[int] = []
    for entry in entries:
        plan = plan_entry(entry, last_ticks.get(entry.name), now)
        due.extend(plan.due)
        if plan.wake_at_ms is not None:
            wakes.append(plan.wake_at_ms)
    due.sort(key=lambda d: (d.fire_at_ms, d.tick_ms, d.entry.name))
    return BeatPlan(tuple(due), min(wakes, default=None))


def next_ticks(entry: Entry, after: datetime, n: int = 5) -> list[datetime]:
    """The next ``n`` ticks of ``entry`` strictly after ``after`` (aware UTC datetimes).

    For ``stem schedule show``; a disabled entry still lists its ticks, and a one-off
    lists at most one. Fire times are these plus :func:`fire_at_ms`'s jitter.
    """
    out: list[datetime] = []
    t_ms: int | None = to_ms(after)
    while len(out) < n and t_ms is not None:
        t_ms = entry.schedule.next_tick_ms_after(t_ms)
        if t_ms is not None:
            out.append(from_ms(t_ms))
    return out
