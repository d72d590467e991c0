"""Job metrics: cumulative per-(queue, task) counts for the heartbeat, and OTel meters.

Two middlewares, both installed by the worker (:func:`stem.worker.core.worker_middleware`):

- ``JobStats`` keeps, per (queue, task), the jobs completed, retried and dead-lettered and
  histograms of run time and wait time (ready → started) with the fixed buckets
  ``BUCKETS_S``. The worker puts :meth:`JobStats.records` into its heartbeat, and the
  Prometheus collector (:mod:`stem.observe.prometheus`) exposes them as
  ``stem_job_run_duration_seconds`` and ``stem_job_wait_duration_seconds``: cumulative
  counts in Redis are what lets one scrape endpoint be right for every worker on every
  machine. Always on; an observation is a ``bisect`` and two additions.
- ``Meters`` records the same events on OpenTelemetry instruments (and ``messages sent``
  on enqueue). It does nothing while no meter provider is set: :func:`configure_from_env`
  installs the SDK's ``MeterProvider`` only when ``OTEL_METRICS_EXPORTER`` names an
  exporter other than ``none`` (the default), so by default the hooks return after one
  cached check. :func:`meter` gives the other actors (lease keeper, reclaimer, beat,
  supervisor, process pool) the same meter for their own instruments.

No attribute or label holds a job id. The OpenTelemetry API is imported on first use
(every app makes a ``Meters``; a process-pool child never records, and loads none of it).
"""

from __future__ import annotations

import bisect
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stem.middleware.base import Middleware, OutgoingJob
from stem.observe.tracing import Once, ProviderLookup, exporter_names
from stem.outcome import Outcome, Verdict

if TYPE_CHECKING:
    from opentelemetry import metrics

    from stem.context import JobContext
    from stem.observe.aggregated import JobHistograms

log = logging.getLogger("stem.observe.metrics")

#: Upper bounds (seconds) of the run and wait histogram buckets; a last ``+Inf`` follows.
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
EXPORTER_ENV = "OTEL_METRICS_EXPORTER"
_SCOPE = "stem"


# -- cumulative stats for the heartbeat --------------------------------------------------


@dataclass(slots=True)
class Histogram:
    """Counts per bucket of ``BUCKETS_S`` (not cumulative; the last is ``+Inf``) and a sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    sum_s: float = 0.0

    def observe(self, value_s: float) -> None:
        """Count one observation (``le`` semantics: a value equal to a bound is in it)."""
        self.counts[bisect.bisect_left(BUCKETS_S, value_s)] += 1
        self.sum_s += value_s


@dataclass(slots=True)
class TaskStats:
    """What one worker did with one task of one queue, since it started."""

    processed: int = 0
    failed: int = 0  # dead-lettered: jobs, not attempts
    retried: int = 0  # attempts scheduled again
    run: Histogram = field(default_factory=Histogram)
    wait: Histogram = field(default_factory=Histogram)


#: The ``JobContext.state`` key of the job's ``TaskStats``.
_STATS = "stem.stats"


class JobStats(Middleware):
    """Cumulative per-(queue, task) counts and histograms; see the module docstring.

    Place it before ``Retries`` so that its ``after_process`` sees the decided outcome.
    Run time is counted for every run (attempt); wait time for every start: ready (the
    stream entry's time, i.e. enqueued, due, or handed back) to started. Jobs refused
    before they could run (bad payload, unknown task) have no task and are counted only
    in the worker's per-queue ``failed``.
    """

    def __init__(self) -> None:
        self.by_task: dict[tuple[str, str], TaskStats] = {}

    def _stats(self, ctx: JobContext) -> TaskStats:
        key = (ctx.queue, ctx.task)
        stats = self.by_task.get(key)
        if stats is None:
            stats = self.by_task[key] = TaskStats()
        return stats

    def before_process(self, ctx: JobContext) -> None:
        stats = ctx.state[_STATS] = self._stats(ctx)  # kept: one lookup a job, not two
        stats.wait.observe(ready_wait_s(ctx))

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        stats = ctx.state.get(_STATS) or self._stats(ctx)
        stats.run.observe(run_s(ctx))
        if outcome.verdict is Verdict.COMPLETE:
            stats.processed += 1

    def on_retry(self, ctx: JobContext, outcome: Outcome) -> None:
        self._stats(ctx).retried += 1

    def on_dead_letter(self, ctx: JobContext | None, reason: str, error: str) -> None:
        if ctx is not None:
            self._stats(ctx).failed += 1

    def records(self) -> list[dict[str, Any]]:
        """The heartbeat's ``by_task`` list: one JSON-ready dict per (queue, task)."""
        return [
            {
                "queue": queue,
                "task": task,
                "processed": s.processed,
                "failed": s.failed,
                "retried": s.retried,
                "run": list(s.run.counts),
                "run_sum_s": s.run.sum_s,
                "wait": list(s.wait.counts),
                "wait_sum_s": s.wait.sum_s,
            }
            for (queue, task), s in self.by_task.items()
        ]


def ready_wait_s(ctx: JobContext) -> float:
    """Seconds from ready (the stream entry's time, by Redis's clock) to now."""
    return max(0.0, time.time() - ctx.ready_ms / 1000) if ctx.ready_ms else 0.0


def run_s(ctx: JobContext) -> float:
    """Seconds since the executor admitted the job (``time.monotonic``: one C call, where
    trio's clock is three Python calls, twice a job)."""
    return max(0.0, time.monotonic() - ctx.started_monotonic)


# -- OpenTelemetry meters ----------------------------------------------------------------


def configure_from_env() -> bool:
    """Install the SDK's meter provider if ``OTEL_METRICS_EXPORTER`` asks for one.

    Does nothing (and returns False) when the variable is unset or ``none``, or when a
    provider is set already; runs once per process. Push exporters (``console``,
    ``otlp``) are read every ``OTEL_METRIC_EXPORT_INTERVAL`` ms (the SDK's default 60 s).
    """
    return _from_env.run()


def _install_from_env() -> bool:
    names = exporter_names(EXPORTER_ENV)
    if not names:
        return False
    from opentelemetry import metrics

    if not _is_noop(metrics.get_meter_provider()):
        return False  # metrics off, or the app set its own provider
    metrics.set_meter_provider(sdk_provider(names))
    return True


_from_env = Once(_install_from_env)


def sdk_provider(exporter_names: list[str]) -> Any:
    """An SDK ``MeterProvider`` that reads into the named exporters."""
    from importlib.metadata import entry_points

    from opentelemetry.sdk.metrics.export import MetricReader

    from stem.observe.aggregated import push_reader

    found = {e.name: e for e in entry_points(group="opentelemetry_metrics_exporter")}
    readers: list[MetricReader] = []
    for name in exporter_names:
        if name not in found:
            log.warning("%s=%s: no such metric exporter installed (ignored)", EXPORTER_ENV, name)
            continue
        exporter = found[name].load()()
        readers.append(exporter if isinstance(exporter, MetricReader) else push_reader(exporter))
    return meter_provider(readers)


EXEMPLAR_FILTER_ENV = "OTEL_METRICS_EXEMPLAR_FILTER"


def meter_provider(readers: Sequence[Any]) -> Any:
    """An SDK ``MeterProvider`` reading into ``readers``, with stem's defaults: service name
    ``stem`` unless ``OTEL_SERVICE_NAME`` says otherwise, and no exemplars unless
    ``OTEL_METRICS_EXEMPLAR_FILTER`` asks for them. The SDK's own default samples an
    exemplar from the current span into every measurement, which more than doubled what a
    histogram measurement costs a traced job (~11 to ~35 µs, docs/guides/observability.md).
    Without exemplars, a provider whose only reader is a :func:`~stem.observe.aggregated.
    push_reader` gets the job histograms aggregated by stem (that module says why).
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "stem"}
    exemplars: Any = None
    if not os.environ.get(EXEMPLAR_FILTER_ENV):
        from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter

        exemplars = AlwaysOffExemplarFilter()
    provider = MeterProvider(
        metric_readers=readers, resource=Resource.create(attributes), exemplar_filter=exemplars
    )
    if exemplars is not None:  # exemplars need each measurement's context: the SDK's path
        from stem.observe.aggregated import job_histograms_of

        histograms = job_histograms_of(readers)
        if histograms is not None:
            _OWN_HISTOGRAMS[provider] = histograms
    return provider


#: Providers whose job histograms stem aggregates itself (``stem.observe.aggregated``).
_OWN_HISTOGRAMS: weakref.WeakKeyDictionary[Any, JobHistograms] = weakref.WeakKeyDictionary()


def aggregates_job_histograms(provider: Any) -> bool:
    """Whether ``Meters`` on ``provider`` records the job histograms in stem's own
    aggregation rather than on the SDK's instruments."""
    return provider in _OWN_HISTOGRAMS


def _is_noop(provider: Any) -> bool:
    from opentelemetry.metrics import NoOpMeterProvider

    # The API's proxy stands in until a provider is set; it is not public API by name.
    return isinstance(provider, NoOpMeterProvider) or type(provider).__name__.startswith("_Proxy")


def meter(provider: Any = None) -> metrics.Meter | None:
    """stem's meter, or None while no meter provider is configured (metrics off)."""
    _from_env.run()
    from opentelemetry import metrics

    provider = provider or metrics.get_meter_provider()
    return None if _is_noop(provider) else provider.get_meter(_SCOPE)


class Instruments:
    """The job instruments of one meter (semantic-convention names where they exist).

    The run and wait histograms are the SDK's, or, for a provider that has them, stem's
    own ``JobHistograms`` (``stem.observe.aggregated``): ``record_run`` and
    ``record_wait`` are bound to one or the other once, here.
    """

    record_run: Callable[[str, str, str, float], None]
    record_wait: Callable[[str, str, float], None]

    def __init__(self, m: metrics.Meter, own: JobHistograms | None = None) -> None:
        self.sent = m.create_counter(
            "messaging.client.sent.messages", "{message}", "Jobs enqueued."
        )
        self.retried = m.create_counter(
            "stem.jobs.retried", "{attempt}", "Attempts scheduled again."
        )
        self.dead_lettered = m.create_counter(
            "stem.jobs.dead_lettered", "{job}", "Jobs dead-lettered."
        )
        consumed = _consumed_counts(m)
        if own is None:
            process = m.create_histogram(
                PROCESS[0], PROCESS[1], PROCESS[2],
                explicit_bucket_boundaries_advisory=list(BUCKETS_S),
            )  # fmt: skip
            wait = m.create_histogram(
                WAIT[0], WAIT[1], WAIT[2], explicit_bucket_boundaries_advisory=list(BUCKETS_S)
            )

            def record_run(queue: str, task: str, outcome: str, value_s: float) -> None:
                process.record(value_s, _attributes(queue, task, outcome))

            def record_wait(queue: str, task: str, value_s: float) -> None:
                key = (queue, task)
                consumed[key] = consumed.get(key, 0) + 1
                wait.record(value_s, _attributes(queue, task))

        else:
            own_process = own.histogram(*PROCESS, BUCKETS_S)
            own_wait = own.histogram(*WAIT, BUCKETS_S)

            def record_run(queue: str, task: str, outcome: str, value_s: float) -> None:
                key = (queue, task, outcome)
                own_process.record(key, _attributes(queue, task, outcome), value_s)

            def record_wait(queue: str, task: str, value_s: float) -> None:
                key = (queue, task)
                consumed[key] = consumed.get(key, 0) + 1
                own_wait.record(key, _attributes(queue, task), value_s)

        self.record_run, self.record_wait = record_run, record_wait


#: Jobs started per (queue, task), by meter: one count for every ``Instruments`` of a
#: meter (the SDK keeps the first callback registered under a name, and ignores the rest).
_CONSUMED: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], int]] = weakref.WeakKeyDictionary()


def _consumed_counts(m: metrics.Meter) -> dict[tuple[str, str], int]:
    """The meter's count of jobs started per (queue, task), observed at each collection
    as ``messaging.client.consumed.messages``: a semantic-convention counter that also
    keeps a collection from ever being empty once a job ran (the SDK exports nothing
    then, stem's own histograms included)."""
    consumed = _CONSUMED.get(m)
    if consumed is not None:
        return consumed
    counts: dict[tuple[str, str], int] = {}
    _CONSUMED[m] = counts

    def observe(_options: Any) -> Iterable[metrics.Observation]:
        from opentelemetry.metrics import Observation

        now = list(counts.items())  # one C call: safe beside the trio thread
        return [Observation(n, _attributes(q, t)) for (q, t), n in now]

    m.create_observable_counter(
        "messaging.client.consumed.messages", [observe], "{message}",
        "Jobs delivered to a task (attempts started).",
    )  # fmt: skip
    return counts


#: The two job histograms: name, unit, description.
PROCESS = (
    "messaging.process.duration", "s",
    "Run time of one attempt (its count: jobs started); stem.outcome says how it ended.",
)  # fmt: skip
WAIT = ("stem.job.wait.duration", "s", "Ready to started, per attempt.")


_ATTRIBUTES: dict[tuple[str, str, str], dict[str, str]] = {}


def _attributes(queue: str, task: str, outcome: str = "") -> dict[str, str]:
    """The attributes of one (queue, task, outcome), built once and reused (the SDK keys
    its series by them; a dict per call would be garbage per job)."""
    key = (queue, task, outcome)
    found = _ATTRIBUTES.get(key)
    if found is None:
        # Only what varies: each attribute costs the SDK a clean-and-hash per measurement
        # (messaging.system is "stem" and the operation is in the instrument's name).
        found = {"messaging.destination.name": queue, "stem.task": task}
        if outcome:
            found["stem.outcome"] = outcome
        if len(_ATTRIBUTES) < 10_000:  # bounded: queue and task names are few
            _ATTRIBUTES[key] = found
    return found


def _global_meter_provider() -> Any:
    _from_env.run()
    from opentelemetry import metrics

    return metrics.get_meter_provider()


def _instruments_of(provider: Any) -> Instruments | None:
    m = meter(provider)
    return None if m is None else Instruments(m, _OWN_HISTOGRAMS.get(provider))


class Meters(Middleware):
    """Records job events on OTel instruments; see the module docstring.

    ``meter_provider`` pins a provider (tests); by default the global one (see
    :class:`~stem.observe.tracing.ProviderLookup`).
    """

    def __init__(self, meter_provider: Any = None) -> None:
        self._lookup = ProviderLookup(meter_provider, _global_meter_provider, _instruments_of)

    def active(self) -> bool:
        """Off while no meter provider is configured: the worker skips the hooks then."""
        return self._lookup.get() is not None

    def instruments(self) -> Instruments | None:
        """The instruments, or None while metrics are off. (The per-job hooks read the
        lookup directly, a call fewer per job: this is not a point to override.)"""
        return self._lookup.get()

    def after_enqueue(self, job: OutgoingJob, created: bool) -> None:
        i = self.instruments()
        if i is not None and created:
            i.sent.add(1, _attributes(job.queue, job.task))

    # The two per-job hooks call the lookup directly: one call fewer each, on every job.
    def before_process(self, ctx: JobContext) -> None:
        i = self._lookup.get()
        if i is None:
            return
        i.record_wait(ctx.queue, ctx.task, ready_wait_s(ctx))

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        i = self._lookup.get()
        if i is None:
            return
        i.record_run(ctx.queue, ctx.task, outcome.verdict.value, run_s(ctx))

    def on_retry(self, ctx: JobContext, outcome: Outcome) -> None:
        i = self.instruments()
        if i is not None:
            i.retried.add(1, _attributes(ctx.queue, ctx.task))

    def on_dead_letter(self, ctx: JobContext | None, reason: str, error: str) -> None:
        i = self.instruments()
        if i is not None and ctx is not None:
            attributes = _attributes(ctx.queue, ctx.task)
            i.dead_lettered.add(1, {**attributes, "stem.reason": reason})  # rare: no cache


Readings = Callable[[], Iterable[tuple[float, dict[str, str]]]]


def observe_gauge(name: str, unit: str, description: str, read: Readings) -> bool:
    """Register an observable gauge on stem's meter that calls ``read`` at each collection;
    False (nothing registered) while metrics are off."""
    m = meter()
    if m is None:
        return False

    from opentelemetry.metrics import Observation

    def callback(_options: Any) -> Iterable[metrics.Observation]:
        return [Observation(value, attributes) for value, attributes in read()]

    m.create_observable_gauge(name, [callback], unit, description)
    return True


def observe_counter(name: str, unit: str, description: str, read: Readings) -> bool:
    """Like :func:`observe_gauge`, for a cumulative count the caller keeps."""
    m = meter()
    if m is None:
        return False

    from opentelemetry.metrics import Observation

    def callback(_options: Any) -> Iterable[metrics.Observation]:
        return [Observation(value, attributes) for value, attributes in read()]

    m.create_observable_counter(name, [callback], unit, description)
    return True


class Counter:
    """A counter of stem's meter that costs one ``None`` check while metrics are off
    (for the lease keeper, reclaimer and beat; created once per actor)."""

    def __init__(self, name: str, unit: str, description: str) -> None:
        m = meter()
        self._counter = None if m is None else m.create_counter(name, unit, description)

    def add(self, amount: float, attributes: dict[str, str] | None = None) -> None:
        """Add ``amount`` (no-op while metrics are off)."""
        if self._counter is not None and amount:
            self._counter.add(amount, attributes or {})
