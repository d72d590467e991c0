"""stem's own job histograms (``stem.observe.aggregated``) against the SDK's: same export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

from stem.observe.aggregated import push_reader
from stem.observe.metrics import Instruments, Meters, aggregates_job_histograms, meter_provider

#: Bounds themselves (a value equal to a bound is in its bucket), zero, and past the last.
BATCHES = (
    [0.0, 0.005, 0.0051, 0.2, 0.2, 1.0, 301.0],
    [0.01, 2.5, 0.003],
)


class Capture(MetricExporter):
    """Keeps every export."""

    def __init__(self, temporality: AggregationTemporality) -> None:
        super().__init__(preferred_temporality={HistogramInstrument: temporality})
        self.exports: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 0, **_: Any) -> Any:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 0) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 0, **_: Any) -> None:
        pass


def _record(i: Instruments, values: Sequence[float]) -> None:
    for n, value in enumerate(values):
        i.record_run("q", "t" if n % 2 else "u", "complete" if n % 3 else "retry", value)
        i.record_wait("q", "t", value)


def _histograms(data: MetricsData | None) -> dict[str, Any]:
    """name -> (scope, unit, description, temporality, points keyed by attributes); a
    counter's points are its values."""
    found: dict[str, Any] = {}
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for m in scope.metrics:
                if isinstance(m.data, Sum):
                    values = {tuple(sorted((p.attributes or {}).items())): p.value
                              for p in m.data.data_points}  # fmt: skip
                    found[m.name] = (scope.scope.name, m.unit, m.description, values)
                    continue
                assert isinstance(m.data, Histogram)
                points = {
                    tuple(sorted((p.attributes or {}).items())): (
                        p.count, p.sum, list(p.bucket_counts), list(p.explicit_bounds),
                        p.min, p.max,
                    )
                    for p in m.data.data_points
                }  # fmt: skip
                found[m.name] = (
                    scope.scope.name,
                    m.unit,
                    m.description,
                    m.data.aggregation_temporality,
                    points,
                )
    return found


@pytest.mark.parametrize(
    "temporality", list(AggregationTemporality)[1:], ids=lambda t: t.name.lower()
)
def test_stems_job_histograms_export_what_the_sdks_would_for_the_same_measurements(
    temporality: AggregationTemporality,
) -> None:
    capture = Capture(temporality)
    ours = meter_provider([push_reader(capture)])
    reference = InMemoryMetricReader(preferred_temporality={HistogramInstrument: temporality})
    theirs = MeterProvider([reference])
    own, sdk = Meters(ours).instruments(), Instruments(theirs.get_meter("stem"))
    assert own is not None and aggregates_job_histograms(ours)

    for batch in BATCHES:
        _record(own, batch)
        _record(sdk, batch)
        ours.force_flush()
        expected = _histograms(reference.get_metrics_data())

        # Nothing but the job instruments recorded: the export still happens.
        got = _histograms(capture.exports[-1])
        assert set(got) == {
            "messaging.client.consumed.messages",
            "messaging.process.duration",
            "stem.job.wait.duration",
        }
        assert got == expected
    consumed = got["messaging.client.consumed.messages"][3]
    assert sum(consumed.values()) == sum(map(len, BATCHES))
    ours.shutdown()
    theirs.shutdown()


def test_a_provider_with_anything_but_one_push_reader_keeps_the_sdks_histograms() -> None:
    capture = Capture(AggregationTemporality.CUMULATIVE)
    memory = InMemoryMetricReader()
    for readers in ([memory], [push_reader(capture), InMemoryMetricReader()]):
        provider = meter_provider(readers)
        assert not aggregates_job_histograms(provider)
        i = Meters(provider).instruments()
        assert i is not None
        _record(i, BATCHES[0])
        provider.force_flush()
        provider.shutdown()
    data = memory.get_metrics_data()
    assert "stem.job.wait.duration" in _histograms(data)
    # The push reader beside another reader got the SDK's histograms, once each.
    names = [m.name for r in capture.exports[-1].resource_metrics for s in r.scope_metrics
             for m in s.metrics]  # fmt: skip
    assert sorted(names) == [
        "messaging.client.consumed.messages",
        "messaging.process.duration",
        "stem.job.wait.duration",
    ]


def test_an_exporter_that_prefers_another_histogram_aggregation_gets_the_sdks() -> None:
    capture = Capture(AggregationTemporality.CUMULATIVE)
    capture._preferred_aggregation = {HistogramInstrument: ExponentialBucketHistogramAggregation()}
    provider = meter_provider([push_reader(capture)])
    assert not aggregates_job_histograms(provider)
    i = Meters(provider).instruments()
    assert i is not None
    _record(i, BATCHES[0])
    provider.force_flush()
    kinds = {m.name: type(m.data).__name__ for r in capture.exports[-1].resource_metrics
             for s in r.scope_metrics for m in s.metrics}  # fmt: skip
    assert kinds["messaging.process.duration"] == "ExponentialHistogram"
    provider.shutdown()


def test_two_meters_on_one_provider_export_each_job_histogram_once() -> None:
    capture = Capture(AggregationTemporality.CUMULATIVE)
    provider = meter_provider([push_reader(capture)])
    assert aggregates_job_histograms(provider)
    one, two = Meters(provider).instruments(), Meters(provider).instruments()
    assert one is not None and two is not None
    _record(one, [0.1])
    _record(two, [0.2])
    provider.force_flush()
    [run] = [
        m for r in capture.exports[-1].resource_metrics for s in r.scope_metrics
        for m in s.metrics if m.name == "messaging.process.duration"
    ]  # fmt: skip
    assert isinstance(run.data, Histogram)
    assert [p.count for p in run.data.data_points] == [2]
    consumed = _histograms(capture.exports[-1])["messaging.client.consumed.messages"]
    assert sum(consumed[3].values()) == 2  # both Meters' jobs, under one instrument
    provider.shutdown()


class Unreachable(Capture):
    """A collector that cannot be reached for the first ``failures`` exports."""

    def __init__(self, failures: int) -> None:
        super().__init__(AggregationTemporality.CUMULATIVE)
        self.failures = failures

    def export(self, metrics_data: MetricsData, timeout_millis: float = 0, **_: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("collector unreachable")
        return super().export(metrics_data, timeout_millis)


def test_an_export_that_fails_costs_nothing_recorded_and_stops_nothing() -> None:
    unreachable = Unreachable(failures=1)
    provider = meter_provider([push_reader(unreachable)])
    i = Meters(provider).instruments()
    assert i is not None
    _record(i, BATCHES[0])
    provider.force_flush()  # fails: the SDK's reader logs it, nothing raises here
    _record(i, BATCHES[1])
    provider.force_flush()
    [data] = unreachable.exports
    waits = _histograms(data)["stem.job.wait.duration"][4]
    assert sum(point[0] for point in waits.values()) == sum(map(len, BATCHES))
    provider.shutdown()
