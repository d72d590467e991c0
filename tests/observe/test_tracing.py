"""One trace across two processes: the producer's span in the test, the consumer's in a
real ``stem worker --burst`` that exports with the SDK's console exporter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stem import JobState, Stem
from stem.observe.tracing import Tracing


def json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects written one after another (the console exporter indents them)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) >= 0:
        doc, end = decoder.raw_decode(text, at)
        found.append(doc)
        at = end
    return found


def test_the_workers_consumer_span_is_a_child_of_the_producers_span(
    redis_url: str, namespace: str, repo_root: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    producer = Stem(redis_url, namespace=namespace, middleware=[Tracing(provider)])
    job = producer.enqueue("tests.apps.observed.fails")
    producer.close()
    [sent] = exporter.get_finished_spans()
    assert sent.context is not None
    assert sent.name == "send default" and sent.kind.name == "PRODUCER"

    env = {**os.environ, "PYTHONPATH": str(repo_root), "OTEL_TRACES_EXPORTER": "console"}
    env.pop("STEM_REDIS_URL", None)
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", redis_url, "--namespace"]
    argv += [namespace, "--app", "tests.apps.observed:app", "worker", "--burst", "--json-logs"]
    done = subprocess.run(
        argv, cwd=repo_root, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr

    spans = [s for s in json_objects(done.stdout) if s.get("name") == "process default"]
    assert len(spans) == 2  # the first attempt and its retry
    trace_id = f"0x{sent.context.trace_id:032x}"
    for span in spans:
        assert span["context"]["trace_id"] == trace_id
        assert span["parent_id"] == f"0x{sent.context.span_id:016x}"
        assert span["kind"] == "SpanKind.CONSUMER"
        assert span["status"]["status_code"] == "ERROR"
        assert span["events"][0]["name"] == "exception"
    attributes = spans[0]["attributes"]
    assert attributes == {
        "messaging.system": "stem",
        "messaging.operation": "process",
        "messaging.destination.name": "default",
        "messaging.message.id": job.id,
        "stem.task": "tests.apps.observed.fails",
        "stem.attempt": 0,
        "stem.deliveries": 1,
        "stem.outcome": "retry",
    }
    # The worker's log lines about the job carry the same trace id.
    records = [json.loads(line) for line in done.stderr.splitlines()]
    lines = [r for r in records if r.get("job_id") == job.id]
    assert lines and all(r["trace_id"] == trace_id[2:] for r in lines)


def test_without_a_tracer_provider_enqueue_adds_no_trace_headers(app: Stem) -> None:
    job = app.enqueue("tests.apps.observed.quiet")
    record = app.broker.job("default", job.id)
    assert record is not None
    assert "traceparent" not in (record.envelope or "")


def test_a_job_revoked_while_it_runs_still_exports_its_process_span(
    redis_url: str, namespace: str, repo_root: Path
) -> None:
    producer = Stem(redis_url, namespace=namespace)
    job = producer.enqueue("tests.apps.observed.waits")
    env = {**os.environ, "PYTHONPATH": str(repo_root), "OTEL_TRACES_EXPORTER": "console"}
    env.pop("STEM_REDIS_URL", None)
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", redis_url, "--namespace"]
    argv += [namespace, "--app", "tests.apps.observed:app", "worker", "--burst"]
    worker = subprocess.Popen(
        argv, cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while job.status() is not JobState.STARTED:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
        producer.broker.revoke("default", job.id, terminate=True)
        out, err = worker.communicate(timeout=60)  # --burst: exits once nothing is left
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
        producer.close()
    assert worker.returncode == 0, err
    [span] = [s for s in json_objects(out) if s.get("name") == "process default"]
    assert span["attributes"]["stem.outcome"] == "cancelled"
    assert span["attributes"]["messaging.message.id"] == job.id
