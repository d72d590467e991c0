"""The Prometheus exposition of a whole deployment, computed from Redis at scrape time.

``DeploymentCollector`` reads everything through the broker's ``Admin`` role when
Prometheus scrapes, so one endpoint anywhere is right for every worker on every machine
(nothing is summed in the endpoint's memory, and it needs no worker to be its host).
Families (``docs/reference/metrics.md`` explains each)::

    stem_up                                   1 if Redis answered this scrape, else 0
    stem_queue_jobs{queue,state}              ready | delayed | pending | dead (the DLQ)
    stem_queue_oldest_ready_age_seconds{queue}
    stem_queue_paused{queue}                  1 while `stem queue pause` holds it
    stem_queue_lease_expired_jobs{queue}      held jobs past their lease (for the reclaimer)
    stem_jobs_reclaimed_total{queue}          jobs reclaimers handed back (from Redis)
    stem_workers_alive                        workers with a live heartbeat
    stem_worker_jobs_held{worker}             running + prefetched
    stem_worker_jobs_running{worker}
    stem_worker_concurrency{worker}
    stem_worker_prefetch{worker}              jobs it may hold ahead now (auto: follows the pace)
    stem_jobs_processed_total{queue,worker}   jobs completed (from heartbeats, every 2 s)
    stem_jobs_failed_total{queue,worker}      jobs dead-lettered (jobs, not attempts)
    stem_jobs_retried_total{queue,worker}     attempts that were scheduled again
    stem_job_run_duration_seconds{queue,task,worker}    histogram, one per run (attempt)
    stem_job_wait_duration_seconds{queue,task,worker}   histogram, ready -> started
    stem_beat_drift_seconds                   lateness of the latest tick a beat fired

The per-worker counters and histograms are each live worker's own, so they reset when a
worker restarts and disappear with it (use ``rate()``/``increase()``, which handle
resets). No label holds a job id. ``serve_metrics`` serves ``/metrics`` from a thread
(``prometheus_client``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from stem.errors import StemError
from stem.observe.metrics import BUCKETS_S
from stem.observe.presence import KINDS

if TYPE_CHECKING:
    from stem.broker import Admin

log = logging.getLogger("stem.observe.prometheus")

STATES = ("ready", "delayed", "pending", "dead")
_COUNTERS = (
    ("processed", "Jobs completed, by queue and worker (since the worker started)."),
    ("failed", "Jobs dead-lettered (jobs, not attempts), by queue and worker."),
    ("retried", "Attempts that failed and were scheduled again, by queue and worker."),
)


class DeploymentCollector(Collector):
    """Collects the families above from ``admin`` on every scrape."""

    def __init__(self, admin: Admin, lease_s: float = 30.0) -> None:
        self.admin = admin
        #: A held job not renewed for this long counts in ``stem_queue_lease_expired_jobs``.
        self.lease_s = lease_s

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("stem_up", "1 if Redis answered this scrape, else 0.")
        try:
            families = list(self._families())
        except StemError as exc:
            log.warning("scrape failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        yield from self._queue_families()
        yield from self._worker_families(self.admin.workers())

    def _queue_families(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "stem_queue_jobs",
            "Jobs in a queue by state: ready (waiting for a worker), delayed (waiting for "
            "their time), pending (held by workers), dead (in the dead-letter queue).",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "stem_queue_oldest_ready_age_seconds",
            "How long the oldest ready job of a queue has waited for a worker (0 if none).",
            labels=["queue"],
            unit="seconds",
        )
        paused = GaugeMetricFamily(
            "stem_queue_paused", "1 while a queue is paused (stem queue pause), else 0.",
            labels=["queue"],
        )  # fmt: skip
        expired = GaugeMetricFamily(
            "stem_queue_lease_expired_jobs",
            "Jobs held by a worker that stopped renewing their lease (died or hung), "
            "waiting for a reclaimer to take them back.",
            labels=["queue"],
        )
        reclaimed = CounterMetricFamily(
            "stem_jobs_reclaimed",
            "Jobs reclaimers handed back for delivery after their lease expired.",
            labels=["queue"],
        )
        lease_ms = int(self.lease_s * 1000)
        for queue in self.admin.queues():
            stats = self.admin.queue_stats(queue)
            for state in STATES:
                depth.add_metric([queue, state], getattr(stats, state))
            age_ms = self.admin.oldest_ready_age_ms(queue)
            oldest.add_metric([queue], (age_ms or 0) / 1000)
            paused.add_metric([queue], 1 if stats.paused else 0)
            expired.add_metric([queue], self.admin.expired_leases(queue, lease_ms))
            counts = self.admin.queue_counters(queue)
            reclaimed.add_metric([queue], counts.get("reclaimed", 0))
        yield from (depth, oldest, paused, expired, reclaimed)

    def _worker_families(self, workers: list[dict[str, Any]]) -> Iterator[Metric]:
        alive = GaugeMetricFamily("stem_workers_alive", "Workers with a live heartbeat.")
        alive.add_metric([], len(workers))
        yield alive
        actors = GaugeMetricFamily(
            "stem_actors_alive",
            "Actors with a live heartbeat, by kind (worker, reclaimer, beat, ratelimiter).",
            labels=["actor"],
        )
        actors.add_metric(["worker"], len(workers))
        records = {kind: self.admin.actors(kind) for kind in KINDS}
        for kind in KINDS:
            actors.add_metric([kind], len(records[kind]))
        yield actors
        yield from _beat_drift(records["beat"])
        gauges = {
            key: GaugeMetricFamily(f"stem_worker_{name}", text, labels=["worker"])
            for key, name, text in (
                ("in_flight", "jobs_held", "Jobs a worker holds (running and prefetched)."),
                ("running", "jobs_running", "Jobs a worker is running now."),
                ("concurrency", "concurrency", "Jobs a worker runs at once at most."),
                ("prefetch", "prefetch", "Jobs a worker may hold ahead of free slots now."),
            )
        }
        counters = {
            kind: CounterMetricFamily(f"stem_jobs_{kind}", text, labels=["queue", "worker"])
            for kind, text in _COUNTERS
        }
        for w in workers:
            wid = str(w.get("id", "?"))
            for key, gauge in gauges.items():
                gauge.add_metric([wid], _number(w.get(key)))
            by_queue = w.get("by_queue")
            for queue, counts in (by_queue if isinstance(by_queue, dict) else {}).items():
                for kind, counter in counters.items():
                    value = counts.get(kind) if isinstance(counts, dict) else None
                    counter.add_metric([str(queue), wid], _number(value))
        yield from gauges.values()
        yield from counters.values()
        yield from _histograms(workers)


def _beat_drift(beats: list[dict[str, Any]]) -> Iterator[Metric]:
    """``stem_beat_drift_seconds``: the lateness of the latest tick any live beat fired
    (absent until one has fired)."""
    fired = [b for b in beats if isinstance(b.get("last_fired_ms"), int | float)]
    if not fired:
        return
    latest = max(fired, key=lambda b: float(b["last_fired_ms"]))
    drift = GaugeMetricFamily(
        "stem_beat_drift_seconds",
        "How late the latest schedule tick fired (seconds after its planned time).",
        unit="seconds",
    )
    drift.add_metric([], _number(latest.get("last_drift_s")))
    yield drift


def _histograms(workers: list[dict[str, Any]]) -> Iterator[Metric]:
    """Run and wait histograms from each heartbeat's ``by_task`` (``JobStats.records``)."""
    labels = ["queue", "task", "worker"]
    run = HistogramMetricFamily(
        "stem_job_run_duration_seconds",
        "How long jobs ran, one observation per run (attempt).",
        labels=labels,
        unit="seconds",
    )
    wait = HistogramMetricFamily(
        "stem_job_wait_duration_seconds",
        "How long jobs waited from ready (enqueued, due or handed back) to started.",
        labels=labels,
        unit="seconds",
    )
    for w in workers:
        rows = w.get("by_task")
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            values = [str(row.get("queue", "?")), str(row.get("task", "?")), str(w.get("id", "?"))]
            for family, key in ((run, "run"), (wait, "wait")):
                buckets = _cumulative(row.get(key))
                if buckets is not None:
                    family.add_metric(values, buckets, _number(row.get(f"{key}_sum_s")))
    yield run
    yield wait


def _cumulative(counts: Any) -> list[tuple[str, float]] | None:
    """Prometheus buckets (cumulative, ``+Inf`` last) from per-bucket counts; None if the
    record is not one (a newer or older worker's shape)."""
    if not isinstance(counts, list) or len(counts) != len(BUCKETS_S) + 1:
        return None
    bounds = [*(repr(b) for b in BUCKETS_S), "+Inf"]
    total, out = 0.0, []
    for bound, count in zip(bounds, counts, strict=True):
        total += _number(count)
        out.append((bound, total))
    return out


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


class RestartsCollector(Collector):
    """``stem_supervisor_restarts_total{actor}``: restarts per actor kind (a spec's name:
    ``worker``, ``reclaimer``, ``beat``, ``redis``...), summed over its replicas, as
    ``read()`` reports them (``stem supervise`` passes its supervisor's statistics).

    The count is this supervisor's own since it started: with several hosts, each host's
    ``stem supervise --metrics-port`` is scraped, so add an ``instance`` label there.
    """

    def __init__(self, read: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "stem_supervisor_restarts",
            "Times the supervisor restarted an actor's process, by actor kind.",
            labels=["actor"],
        )
        totals: dict[str, int] = {}
        for actor, count in self.read():
            totals[actor] = totals.get(actor, 0) + count
        for actor, total in sorted(totals.items()):
            restarts.add_metric([actor], total)
        yield restarts


def exposition(admin: Admin, lease_s: float = 30.0, extra: Sequence[Collector] = ()) -> str:
    """The text exposition of one scrape (what ``/metrics`` returns)."""
    from prometheus_client import generate_latest

    return generate_latest(_registry(admin, lease_s, extra)).decode()


def _registry(admin: Admin, lease_s: float, extra: Sequence[Collector]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeploymentCollector(admin, lease_s))
    for collector in extra:
        registry.register(collector)
    return registry


def serve_metrics(
    admin: Admin,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104  (scraped from other hosts; serves counts, no secrets)
    *,
    lease_s: float = 30.0,
    extra: Sequence[Collector] = (),
) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns (server, thread).

    ``lease_s`` is the app's lease (for ``stem_queue_lease_expired_jobs``); ``extra``
    collectors add families (``stem supervise`` adds its restart counts). Each scrape
    reads Redis; a scrape while Redis is down answers ``stem_up 0`` instead of failing.
    ``server.shutdown()`` then ``server.server_close()`` stop it.
    """
    from prometheus_client import start_http_server

    registry = _registry(admin, lease_s, extra)
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread
