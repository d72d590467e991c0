"""What ``stem observe metrics`` computes from the workers' heartbeats: job rates and
wait/run percentiles per queue and per task over a sliding window, and the loop that
redraws it at a steady rate.

Workers publish cumulative counters and histogram bucket counts in their heartbeat
records (every 2 s). A :class:`Window` keeps the records read over the last ``span_s``
seconds; a worker's rates are the difference between its newest record and its oldest
one in the window, over the time between their heartbeats (``ts_ms``), so the view needs
no state in Redis and stays right with any number of workers on any machines. A worker
that restarted (a counter went down, or a new ``started_at``) counts from zero.
Percentiles come from the summed bucket differences (:func:`percentile_from_buckets`),
as Prometheus's ``histogram_quantile`` does. Counters count jobs, not attempts:
``processed`` completed, ``failed`` dead-lettered, ``retried`` attempts scheduled again.

The heartbeat fields read here (a record without ``by_task`` shows queue rows only)::

    "by_queue": {"<queue>": {"processed": 120, "failed": 3, "retried": 5}},
    "by_task": [{"queue": "<queue>", "task": "<task>",
                 "processed": 100, "failed": 1, "retried": 2,
                 "run": [4, 9, ..., 0], "wait": [...], "run_sum_s": ..., "wait_sum_s": ...}]

``run`` and ``wait`` count observations per bucket of ``stem.observe.metrics.BUCKETS_S``
since the worker started (per bucket, not cumulative over buckets), with one more entry
for those past the last bound (OpenTelemetry's explicit-bucket layout).

Nothing here reads Redis or prints; the CLI feeds records in and shows rows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The heartbeat records carry counts only, per bucket of the worker's BUCKETS_S.
from stem.observe.metrics import BUCKETS_S

#: Queue-level counters in a heartbeat record: ``by_queue[queue][name]``.
COUNTERS = ("processed", "failed", "retried")
#: Histograms per (queue, task) in a heartbeat record; see :func:`task_histograms`.
HISTOGRAMS = ("wait", "run")


def percentile_from_buckets(
    bounds: Sequence[float], counts: Sequence[int | float], q: float
) -> float | None:
    """The ``q`` quantile (0..1) of observations counted in buckets, or None if none.

    ``bounds`` are the buckets' ascending upper bounds; ``counts`` the observations in
    each bucket (not cumulative), with one more bucket past the last bound allowed (the
    overflow, as OpenTelemetry counts them). Like Prometheus's ``histogram_quantile``,
    the value is interpolated linearly inside its bucket (the first bucket starts at 0)
    and a rank in the overflow bucket answers the last bound.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    total = sum(counts)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    below = 0.0
    for i, count in enumerate(counts):
        if i >= len(bounds):
            return float(bounds[-1])
        if count > 0 and below + count >= rank:
            lower = 0.0 if i == 0 else float(bounds[i - 1])
            return lower + (float(bounds[i]) - lower) * max(0.0, rank - below) / count
        below += count
    return float(bounds[-1])


@dataclass(frozen=True)
class Histogram:
    """Bucket counts (one more than ``bounds``: the last is past the last bound)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]

    def minus(self, before: Histogram | None) -> Histogram:
        """What was observed since ``before`` (all of it after a reset or a change of
        bounds)."""
        if before is None or before.bounds != self.bounds:
            return self
        diff = tuple(a - b for a, b in zip(self.counts, before.counts, strict=True))
        return self if any(d < 0 for d in diff) else Histogram(self.bounds, diff)

    def plus(self, other: Histogram | None) -> Histogram:
        """Both together (``other`` is ignored if its bounds differ)."""
        if other is None or other.bounds != self.bounds:
            return self
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return Histogram(self.bounds, counts)

    def percentile(self, q: float) -> float | None:
        """See :func:`percentile_from_buckets`."""
        return percentile_from_buckets(self.bounds, self.counts, q)


def _histogram(value: Any) -> Histogram | None:
    """A histogram from its heartbeat form: counts per bucket of ``BUCKETS_S``, plus
    the overflow bucket (None if it is not that)."""
    if not isinstance(value, list) or len(value) != len(BUCKETS_S) + 1:
        return None
    if not all(isinstance(c, int) and c >= 0 for c in value):
        return None
    return Histogram(BUCKETS_S, tuple(value))


def queue_counters(record: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``by_queue`` of a heartbeat record: queue -> (processed, failed, retried)."""
    by_queue = record.get("by_queue")
    out: dict[str, tuple[int, ...]] = {}
    for queue, counts in (by_queue if isinstance(by_queue, Mapping) else {}).items():
        if isinstance(counts, Mapping):
            out[str(queue)] = tuple(_int(counts.get(name)) for name in COUNTERS)
    return out


def task_histograms(record: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (queue, task): ``processed``/``failed``/``retried`` counts and ``wait``/``run``
    histograms, from a heartbeat record's ``by_task`` list (entries that are not of that
    form are left out)."""
    by_task = record.get("by_task")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for item in by_task if isinstance(by_task, list) else []:
        if not isinstance(item, Mapping):
            continue
        queue, task = item.get("queue"), item.get("task")
        if not isinstance(queue, str) or not isinstance(task, str):
            continue
        entry: dict[str, Any] = {name: _int(item.get(name)) for name in COUNTERS}
        entry.update({name: _histogram(item.get(name)) for name in HISTOGRAMS})
        out[(queue, task)] = entry
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass
class Totals:
    """What a window saw for one queue or one task: rates summed over workers and the
    histogram differences summed over workers."""

    processed_per_s: float = 0.0
    failed_per_s: float = 0.0
    retried_per_s: float = 0.0
    measured: bool = False
    histograms: dict[str, Histogram] = field(default_factory=dict)

    def add(self, counts: Sequence[int], window_s: float) -> None:
        """Add one worker's (processed, failed, retried) differences over its window."""
        self.processed_per_s += counts[0] / window_s
        self.failed_per_s += counts[1] / window_s
        self.retried_per_s += counts[2] / window_s
        self.measured = True

    def add_histogram(self, name: str, h: Histogram | None) -> None:
        """Add one worker's bucket differences to the ``name`` (wait or run) histogram."""
        if h is not None:
            self.histograms[name] = h.plus(self.histograms.get(name))

    def doc(self) -> dict[str, float | None]:
        """Rates (None when no worker had two heartbeats in the window) and p50/p99 of
        the wait and run times in seconds (None without observations)."""
        doc: dict[str, float | None] = {
            key: (round(value, 3) if self.measured else None)
            for key, value in (
                ("processed_per_s", self.processed_per_s),
                ("failed_per_s", self.failed_per_s),
                ("retried_per_s", self.retried_per_s),
            )
        }
        for name in HISTOGRAMS:
            h = self.histograms.get(name)
            for q in (50, 99):
                value = None if h is None else h.percentile(q / 100)
                doc[f"{name}_p{q}_s"] = None if value is None else round(value, 6)
        return doc


def _minus(new: Sequence[int], old: Sequence[int] | None) -> tuple[int, ...]:
    if old is None:
        return tuple(new)
    diff = tuple(a - b for a, b in zip(new, old, strict=True))
    return tuple(new) if any(d < 0 for d in diff) else diff


@dataclass(frozen=True)
class Stats:
    """One window's result: per queue and per (queue, task), and per worker."""

    window_s: float
    queues: dict[str, Totals]
    tasks: dict[tuple[str, str], Totals]
    workers: dict[str, dict[str, float]]


class Window:
    """The heartbeat records of the last ``span_s`` seconds (at least two reads kept)."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self.reads: deque[tuple[float, dict[str, Mapping[str, Any]]]] = deque()

    def add(self, at_s: float, records: Iterable[Mapping[str, Any]]) -> None:
        """Keep one read of the workers' records, taken at monotonic time ``at_s``."""
        by_id = {
            r["id"]: r
            for r in records
            if isinstance(r.get("id"), str) and isinstance(r.get("ts_ms"), int)
        }
        self.reads.append((at_s, by_id))
        while len(self.reads) > 2 and self.reads[1][0] <= at_s - self.span_s:
            self.reads.popleft()

    def stale(self) -> bool:
        """Whether a worker in the last read has no newer heartbeat than in the first."""
        if len(self.reads) < 2:
            return True
        first, last = self.reads[0][1], self.reads[-1][1]
        return any(r["ts_ms"] <= first[w]["ts_ms"] for w, r in last.items() if w in first)

    def stats(self) -> Stats:
        """Rates and histogram differences between each worker's oldest and newest
        record in the window."""
        queues: dict[str, Totals] = {}
        tasks: dict[tuple[str, str], Totals] = {}
        workers: dict[str, dict[str, float]] = {}
        newest = self.reads[-1][1] if self.reads else {}
        for wid, new in newest.items():
            old = next((read[wid] for _, read in self.reads if wid in read), new)
            if new["ts_ms"] <= old["ts_ms"]:  # one heartbeat only: rows, no figures yet
                for queue, task in task_histograms(new):
                    tasks.setdefault((queue, task), Totals())
                continue
            window_s = (new["ts_ms"] - old["ts_ms"]) / 1000
            if old.get("started_at") != new.get("started_at"):
                old = {}  # a restart under the same name: everything since it started
            total = Totals()
            old_queues = queue_counters(old)
            for queue, counts in queue_counters(new).items():
                diff = _minus(counts, old_queues.get(queue))
                queues.setdefault(queue, Totals()).add(diff, window_s)
                total.add(diff, window_s)
            old_tasks = task_histograms(old)
            for key, entry in task_histograms(new).items():
                before = old_tasks.get(key, {})
                t = tasks.setdefault(key, Totals())
                t.add(_minus([entry[c] for c in COUNTERS], _counts(before)), window_s)
                for name in HISTOGRAMS:
                    h = entry[name]
                    seen = None if h is None else h.minus(before.get(name))
                    t.add_histogram(name, seen)
                    queues.setdefault(key[0], Totals()).add_histogram(name, seen)
            workers[wid] = {
                "processed_per_s": total.processed_per_s,
                "failed_per_s": total.failed_per_s,
            }
        window_s = self.reads[-1][0] - self.reads[0][0] if self.reads else 0.0
        return Stats(window_s, queues, tasks, workers)


def _counts(entry: Mapping[str, Any]) -> tuple[int, ...] | None:
    return tuple(entry[c] for c in COUNTERS) if entry else None


def refresh_every(
    interval_s: float,
    step: Callable[[], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    frames: int | None = None,
) -> None:
    """Call ``step`` every ``interval_s`` seconds on a fixed grid (``frames`` times, or
    until it raises; Ctrl-C's ``KeyboardInterrupt`` goes to the caller).

    The time ``step`` takes is not added to the interval: steps start at 0, 1, 2, ...
    intervals. A step that overruns the grid is followed at once by the next, and the
    grid restarts from there instead of bursting to catch up.
    """
    next_at = clock()
    done = 0
    while frames is None or done < frames:
        step()
        done += 1
        if frames is not None and done >= frames:
            return
        next_at += interval_s
        now = clock()
        if next_at <= now:
            next_at = now
        else:
            sleep(next_at - now)
