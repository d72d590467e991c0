"""The OpenTelemetry sample: an order service whose jobs are traced and measured.

Each ``enqueue`` opens a PRODUCER span and carries its W3C trace context in the job;
the worker's CONSUMER span continues that trace, so one order is one trace from the
producer's process through the worker's. The tasks record their own metrics beside
stem's (stem installs the meter and tracer providers from the ``OTEL_*`` variables).
Run it (samples/otlp/README.md has the Collector, Prometheus and Grafana)::

    export OTEL_TRACES_EXPORTER=console OTEL_METRICS_EXPORTER=console
    stem --app samples.otlp.app:app worker --burst &     # needs STEM_REDIS_URL
    python -m samples.otlp.produce 5                     # place 5 orders, wait for them

With ``pip install 'stem-jobs[otlp]'`` and ``OTEL_TRACES_EXPORTER=otlp`` (and
``OTEL_METRICS_EXPORTER=otlp``) the same goes to a Collector on
``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4317``, OTLP over gRPC).
"""

from __future__ import annotations

import logging
import os

import trio
from opentelemetry import metrics

import stem

app = stem.Stem(
    namespace=os.environ.get("STEM_NAMESPACE", "stem"),
    retry=stem.RetryPolicy(max_retries=2, backoff_base_s=0.05, backoff_cap_s=0.2),
)
log = logging.getLogger("samples.otlp")
meter = metrics.get_meter("samples.otlp")
orders = meter.create_counter("sample.orders", unit="{order}", description="Orders placed.")
order_value = meter.create_histogram(
    "sample.order.value", unit="EUR", description="What each order was worth."
)


@app.task
async def place_order(order_id: int, value_eur: float) -> dict[str, object]:
    """Books an order, then hands its receipt to another job (same trace)."""
    await trio.sleep(0.01)  # the order service
    orders.add(1, {"outcome": "placed"})
    order_value.record(value_eur)
    receipt = send_receipt.enqueue(order_id)
    return {"order": order_id, "receipt_job": receipt.id}


@app.task(pool="threads")
def send_receipt(order_id: int) -> str:
    """The mail server refuses the first attempt of every third receipt: a retry, with
    the error recorded on that attempt's span."""
    job = stem.current_job()
    if order_id % 3 == 0 and job.attempt == 0:
        raise ConnectionError(f"mail server busy for order {order_id}")
    return f"receipt for order {order_id} sent"
