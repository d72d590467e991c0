"""OpenTelemetry for the sample's processes, from the standard ``OTEL_*`` variables.

Traces need nothing here: stem installs the SDK's tracer provider itself when
``OTEL_TRACES_EXPORTER`` names an exporter (``console``, or ``otlp`` with the ``otlp``
extra). This module does the same for metrics: with ``OTEL_METRICS_EXPORTER``
set, it installs a meter provider that exports every ``OTEL_METRIC_EXPORT_INTERVAL`` ms
(default 60000) to the named exporters, so the sample's own instruments (and any that
stem records through the global meter provider) reach them. It does nothing when the
variable is unset or ``none``, or when the process has a meter provider already.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points

from opentelemetry import metrics

log = logging.getLogger("samples.otlp")

METRICS_EXPORTER_ENV = "OTEL_METRICS_EXPORTER"


def configure_metrics() -> bool:
    """Install a meter provider for ``OTEL_METRICS_EXPORTER``; True if one was installed."""
    names = [n.strip() for n in os.environ.get(METRICS_EXPORTER_ENV, "").split(",")]
    names = [n for n in names if n and n != "none"]
    # The API's default is a proxy that forwards to the provider set later: only then is
    # there no provider yet (set_meter_provider refuses to replace a real one).
    if not names or type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider":
        return False
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    found = {e.name: e for e in entry_points(group="opentelemetry_metrics_exporter")}
    readers = []
    for name in names:
        if name not in found:
            log.warning("%s=%s: no such metric exporter installed", METRICS_EXPORTER_ENV, name)
            continue
        readers.append(PeriodicExportingMetricReader(found[name].load()()))
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "stem-sample"}
    provider = MeterProvider(metric_readers=readers, resource=Resource.create(attributes))
    metrics.set_meter_provider(provider)
    return True
