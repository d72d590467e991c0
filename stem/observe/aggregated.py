"""Job histograms that stem aggregates itself and hands to the SDK's push exporter.

Why: a measurement on an OpenTelemetry SDK histogram costs ~12 µs in a loop and ~30 µs in
a busy worker (SDK 1.45: the ``Measurement`` object, and cleaning, copying and hashing its
attributes, on every call), and a job makes two (run time and wait time). The SDK has no
bound instruments and no way to hand it pre-aggregated data (no ``MetricProducer``), so
where stem builds the whole export path itself it aggregates the two job histograms the
way the SDK would (explicit buckets ``BUCKETS_S``, sum, count, min, max per attribute set)
at ~1 µs a job, and adds them to what the SDK collected, at the exporter, each time the
reader exports.

Where: :func:`push_reader` wraps an exporter in the SDK's ``PeriodicExportingMetricReader``
through :class:`JobHistogramsExporter`; :func:`stem.observe.metrics.meter_provider` given
exactly one such reader (what ``OTEL_METRICS_EXPORTER=console`` or ``otlp`` builds) and no
exemplar filter makes the provider's ``JobHistograms``, and ``Meters`` records into it
instead of the SDK's instruments. Anything else (several readers, a pull reader such as
Prometheus's, the in-memory reader, a provider an app made, exemplars asked for) keeps the
SDK's own histograms, measurement by measurement.

What is exported is what the SDK would export for the same measurements: the same
instrument names, units, descriptions, attributes, bounds, counts, sums, min and max
(``tests/observe/test_aggregated.py`` compares the two), under the meter's scope
(``stem``), cumulative or delta as the exporter prefers. What differs: no exemplars, and
a series' start time: its first measurement (cumulative), or the end of the last
interval in which it had any (delta; the SDK's is the previous collection).

The SDK calls the exporter only when it collected something itself. ``Instruments``
always observes ``messaging.client.consumed.messages`` (jobs started, per queue and
task), which has a point at every collection once a job was recorded, so the job
histograms are never left behind, at an interval or at shutdown.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.view import DefaultAggregation
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

#: The instruments' scope: the name of stem's meter (``stem.observe.metrics``).
SCOPE = "stem"


class _Series:
    """One attribute set of one histogram: counts per bucket (the last is ``+Inf``), sum,
    min and max since ``start_ns``."""

    __slots__ = ("attributes", "counts", "max", "min", "start_ns", "sum")

    def __init__(self, attributes: dict[str, str], buckets: int, start_ns: int) -> None:
        self.attributes = attributes
        self.counts = [0] * buckets
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.start_ns = start_ns


class JobHistogram:
    """One histogram instrument (name, unit, description, bounds), by attribute set."""

    def __init__(
        self, name: str, unit: str, description: str, bounds: tuple[float, ...], lock: Any
    ) -> None:
        self.name, self.unit, self.description = name, unit, description
        self.bounds = bounds
        self._lock = lock
        self._series: dict[tuple[str, ...], _Series] = {}

    def record(self, key: tuple[str, ...], attributes: Mapping[str, str], value: float) -> None:
        """Count ``value`` in the series ``key`` names (its attributes: ``attributes``)."""
        with self._lock:
            s = self._series.get(key)
            if s is None:
                s = _Series(dict(attributes), len(self.bounds) + 1, time.time_ns())
                self._series[key] = s
            s.counts[bisect.bisect_left(self.bounds, value)] += 1
            s.sum += value
            # Comparisons, not min()/max(): two calls fewer on every job.
            if value < s.min:  # noqa: PLR1730
                s.min = value
            if value > s.max:  # noqa: PLR1730
                s.max = value

    def collect(self, temporality: AggregationTemporality, now_ns: int) -> Metric | None:
        """The data points now (None: nothing to report); a delta collection starts every
        series again from ``now_ns``."""
        delta = temporality is AggregationTemporality.DELTA
        points = []
        with self._lock:
            for s in self._series.values():
                count = sum(s.counts)
                if count == 0:
                    continue  # only after a delta collection: nothing since
                points.append(
                    HistogramDataPoint(
                        attributes=dict(s.attributes),
                        start_time_unix_nano=s.start_ns,
                        time_unix_nano=now_ns,
                        count=count,
                        sum=s.sum,
                        bucket_counts=list(s.counts),
                        explicit_bounds=list(self.bounds),
                        min=s.min,
                        max=s.max,
                        exemplars=[],
                    )
                )
                if delta:
                    s.counts = [0] * len(s.counts)
                    s.sum, s.min, s.max, s.start_ns = 0.0, math.inf, -math.inf, now_ns
        if not points:
            return None
        return Metric(self.name, self.description, self.unit, Histogram(points, temporality))


class JobHistograms:
    """The histograms a provider's ``Meters`` records into, instead of the SDK's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # recorded on the trio thread, read by the reader's
        self._histograms: list[JobHistogram] = []

    def histogram(
        self, name: str, unit: str, description: str, bounds: tuple[float, ...]
    ) -> JobHistogram:
        """The histogram ``name`` (made on first use), exported with the others."""
        for made in self._histograms:
            if made.name == name:
                return made
        made = JobHistogram(name, unit, description, bounds, self._lock)
        self._histograms.append(made)
        return made

    def collect(self, temporality: AggregationTemporality) -> list[Metric]:
        """Every histogram's metric now (those with data)."""
        now_ns = time.time_ns()
        found = (h.collect(temporality, now_ns) for h in self._histograms)
        return [m for m in found if m is not None]


class JobHistogramsExporter(MetricExporter):
    """Passes every export to ``exporter`` with the job histograms added."""

    def __init__(self, exporter: MetricExporter) -> None:
        # The SDK's own reader reads an exporter's preferences from these attributes.
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self.exporter = exporter
        self.histograms: JobHistograms | None = None  # set by the provider that uses it
        histogram = (exporter._preferred_temporality or {}).get(HistogramInstrument)
        self._temporality = histogram or AggregationTemporality.CUMULATIVE

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export ``metrics_data`` plus the job histograms, under stem's scope."""
        if self.histograms is not None:
            metrics_data = _with(metrics_data, self.histograms.collect(self._temporality))
        return self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """The wrapped exporter's flush."""
        return self.exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """The wrapped exporter's shutdown."""
        self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


def _with(data: MetricsData, extra: list[Metric]) -> MetricsData:
    """``data`` with ``extra`` in the first resource's ``stem`` scope (made if missing)."""
    if not extra or not data.resource_metrics:
        return data
    first, *rest = data.resource_metrics
    scopes = list(first.scope_metrics)
    for n, scope in enumerate(scopes):
        if scope.scope.name == SCOPE:
            scopes[n] = ScopeMetrics(scope.scope, [*scope.metrics, *extra], scope.schema_url)
            break
    else:
        scopes.append(ScopeMetrics(InstrumentationScope(SCOPE), extra, ""))
    return MetricsData([ResourceMetrics(first.resource, scopes, first.schema_url), *rest])


#: The exporter wrapper of each reader :func:`push_reader` made.
_WRAPPERS: weakref.WeakKeyDictionary[Any, JobHistogramsExporter] = weakref.WeakKeyDictionary()


def push_reader(exporter: MetricExporter) -> PeriodicExportingMetricReader:
    """The SDK's periodic reader (``OTEL_METRIC_EXPORT_INTERVAL``) around ``exporter``,
    able to carry stem's job histograms (see the module docstring)."""
    wrapper = JobHistogramsExporter(exporter)
    reader = PeriodicExportingMetricReader(wrapper)
    _WRAPPERS[reader] = wrapper
    return reader


def job_histograms_of(readers: Sequence[Any]) -> JobHistograms | None:
    """The job histograms for a provider reading into ``readers``: made and attached when
    the only reader is a :func:`push_reader` no provider uses yet, whose exporter wants
    the SDK's default histogram aggregation; else None (the SDK's own histograms are used:
    e.g. for an OTLP exporter told to prefer exponential histograms)."""
    if len(readers) != 1:
        return None  # a delta collection resets the data: one reader must own it
    wrapper = _WRAPPERS.get(readers[0])
    if wrapper is None or wrapper.histograms is not None:
        return None
    wanted = (wrapper.exporter._preferred_aggregation or {}).get(HistogramInstrument)
    if wanted is not None and type(wanted) is not DefaultAggregation:
        return None
    wrapper.histograms = JobHistograms()
    return wrapper.histograms
