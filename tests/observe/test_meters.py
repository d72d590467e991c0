"""OpenTelemetry meters: the job instruments of a worker, in this process and in a real one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from stem import Stem
from stem.observe.metrics import Meters
from stem.worker import WorkerOptions, serve_worker
from tests.observe.test_tracing import json_objects


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every data point read now, by instrument name."""
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def by_task(found: dict[str, list[Any]], name: str, task: str) -> list[Any]:
    return [p for p in found.get(name, []) if p.attributes.get("stem.task") == task]


async def test_a_workers_meters_count_sent_consumed_retried_and_dead_lettered_jobs_per_task(
    redis_url: str, namespace: str
) -> None:
    reader = InMemoryMetricReader()
    app = Stem(redis_url, namespace=namespace, middleware=[Meters(MeterProvider([reader]))])
    from tests.apps import observed

    app.tasks.update(observed.app.tasks)
    app.retry = observed.app.retry
    quiet, fails = "tests.apps.observed.quiet", "tests.apps.observed.fails"
    for _ in range(5):
        app.enqueue(quiet)
    app.enqueue(fails)
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_worker, app, WorkerOptions(burst=True, name="m1"))
    finally:
        app.close()

    found = points(reader)
    assert sum(p.value for p in by_task(found, "messaging.client.sent.messages", quiet)) == 5
    runs = by_task(found, "messaging.process.duration", quiet)
    assert sum(p.count for p in runs if p.attributes["stem.outcome"] == "complete") == 5
    assert sum(p.count for p in by_task(found, "messaging.process.duration", fails)) == 2
    assert sum(p.value for p in by_task(found, "stem.jobs.retried", fails)) == 1
    assert sum(p.value for p in by_task(found, "stem.jobs.dead_lettered", fails)) == 1
    assert sum(p.count for p in by_task(found, "messaging.process.duration", quiet)) == 5
    assert sum(p.count for p in by_task(found, "stem.job.wait.duration", fails)) == 2
    for series in found.values():
        for p in series:
            assert "messaging.message.id" not in p.attributes  # no job ids


def test_a_real_worker_exports_its_meters_when_otel_metrics_exporter_names_one(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    for _ in range(3):
        app.enqueue("tests.apps.observed.chatty", ["hi"])
    env = {**os.environ, "PYTHONPATH": str(repo_root), "OTEL_METRICS_EXPORTER": "console"}
    env.pop("STEM_REDIS_URL", None)
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", redis_url, "--namespace"]
    argv += [namespace, "--app", "tests.apps.observed:app", "worker", "--burst"]
    done = subprocess.run(
        argv, cwd=repo_root, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    names = set(metric_names(json_objects(done.stdout)))
    assert {
        "messaging.process.duration",
        "stem.job.wait.duration",
        "stem.leases.renewed",
        "stem.pool.children",
    } <= names


def metric_names(docs: list[dict[str, Any]]) -> Iterator[str]:
    for doc in docs:
        for resource in doc.get("resource_metrics", []):
            for scope in resource.get("scope_metrics", []):
                for metric in scope.get("metrics", []):
                    yield metric["name"]


def exemplars_of_a_measurement_inside_a_span(monkeypatch: Any, filter_env: str | None) -> list[Any]:
    from opentelemetry.sdk.trace import TracerProvider

    from stem.observe.metrics import EXEMPLAR_FILTER_ENV, meter_provider

    if filter_env is None:
        monkeypatch.delenv(EXEMPLAR_FILTER_ENV, raising=False)
    else:
        monkeypatch.setenv(EXEMPLAR_FILTER_ENV, filter_env)
    reader = InMemoryMetricReader()
    histogram = meter_provider([reader]).get_meter("t").create_histogram("h", unit="s")
    with TracerProvider().get_tracer("t").start_as_current_span("job"):
        histogram.record(0.5, {"stem.task": "t"})
    [point] = points(reader)["h"]
    return list(point.exemplars)


def test_stems_meter_provider_samples_no_exemplars_unless_the_environment_asks(
    monkeypatch: Any,
) -> None:
    # Each exemplar costs a traced job's measurement about as much as the measurement.
    assert exemplars_of_a_measurement_inside_a_span(monkeypatch, None) == []
    assert len(exemplars_of_a_measurement_inside_a_span(monkeypatch, "trace_based")) == 1
