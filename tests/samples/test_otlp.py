"""Smoke test of samples/otlp: a producer and a worker, as real processes, export their
spans and metrics with OpenTelemetry's console exporter, and one order is one trace."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ORDERS = 4


def json_documents(text: str) -> list[dict[str, Any]]:
    """The JSON objects in ``text`` (the console exporters print them indented, one after
    another)."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) >= 0:
        try:
            doc, at = decoder.raw_decode(text, start)
        except ValueError:
            at = start + 1
            continue
        docs.append(doc)
    return docs


def metric_values(docs: list[dict[str, Any]], name: str) -> list[float]:
    """Every data point value (sum or count) the metric ``name`` was exported with."""
    return [
        point.get("value", point.get("count"))
        for doc in docs
        for resource in doc.get("resource_metrics", [])
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
        if metric["name"] == name
        for point in metric["data"]["data_points"]
    ]


def test_the_sample_traces_each_order_from_producer_to_worker_and_exports_metrics(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(repo_root),
        "STEM_REDIS_URL": redis_url,
        "STEM_NAMESPACE": namespace,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_SERVICE_NAME": "stem-sample",
    }
    worker_out = tmp_path / "worker.out"
    with worker_out.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "stem", "--app", "samples.otlp.app:app", "worker"],
            cwd=repo_root, env=env, stdout=out, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        try:
            producer = subprocess.run(
                [sys.executable, "-m", "samples.otlp.produce", str(ORDERS)],
                cwd=repo_root, env=env, capture_output=True, text=True, timeout=90, check=False,
            )  # fmt: skip
        finally:
            os.killpg(worker.pid, signal.SIGTERM)  # a graceful stop flushes the exporters
            _, worker_err = worker.communicate(timeout=60)

    assert producer.returncode == 0, producer.stderr
    assert worker.returncode == 0, worker_err.decode()[-2000:]
    sent = [d for d in json_documents(producer.stdout) if d.get("name") == "send default"]
    worker_docs = json_documents(worker_out.read_text())
    spans = [d for d in worker_docs if "context" in d]
    processed = [s for s in spans if s["name"] == "process default"]

    assert len(sent) == ORDERS
    for send in sent:
        [order] = [s for s in processed if s["parent_id"] == send["context"]["span_id"]]
        assert order["context"]["trace_id"] == send["context"]["trace_id"]
        assert (order["kind"], order["attributes"]["messaging.system"]) == (
            "SpanKind.CONSUMER",
            "stem",
        )
    # Each order's receipt job continues the order's trace, retried attempts included.
    receipts = [s for s in processed if s["attributes"]["stem.task"].endswith("send_receipt")]
    assert {s["context"]["trace_id"] for s in receipts} == {s["context"]["trace_id"] for s in sent}
    failed = [s for s in receipts if s["status"]["status_code"] == "ERROR"]
    assert [e["name"] for s in failed for e in s["events"]] == ["exception"] * len(failed) != []
    assert max(metric_values(worker_docs, "sample.orders")) == ORDERS
    assert max(metric_values(worker_docs, "sample.order.value")) == ORDERS
    # stem's own instruments go to the same exporter: the orders' completed runs are one
    # data point (by task and outcome).
    assert ORDERS in metric_values(worker_docs, "messaging.process.duration")


def test_every_file_the_compose_file_mounts_is_in_the_repository(repo_root: Path) -> None:
    here = repo_root / "samples" / "otlp"
    compose = (here / "docker-compose.yml").read_text()
    mounted = re.findall(r"^\s*- (\.{1,2}/[^:]+):", compose, re.MULTILINE)
    assert "../../deploy/grafana/stem-dashboard.json" in mounted
    assert "../../deploy/prometheus/stem-alerts.yml" in mounted
    assert [m for m in mounted if not (here / m).is_file()] == []
