"""Trace context in a job's headers: W3C ``traceparent``/``tracestate`` read and written
directly while the global propagator is OpenTelemetry's default.

``propagate.extract`` costs a job ~5 µs in a loop and ~20 µs inside a busy worker (a
regex search through the module cache, a getter per field, two propagators); stem's own
headers are always in one canonical form, so :class:`Propagation` reads that form with one
anchored match and hands everything else to the global propagator:

* the fast path is taken only while ``propagate.get_global_textmap()`` is the SDK's
  default (``tracecontext,baggage``, or ``tracecontext`` alone) and, on extract, the
  headers hold no ``baggage`` and no ``tracestate`` and a ``traceparent`` of version
  ``00`` exactly as stem writes it; on inject, while the context carries no baggage;
* anything else (another ``OTEL_PROPAGATORS``, a textmap the app set, baggage, a header
  in any other shape, valid or not) goes through the global propagator, so the result is
  the propagator's by construction. tests/observe/test_spans.py compares the two.
"""

from __future__ import annotations

import re

from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_CANONICAL = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def is_default(textmap: TextMapPropagator) -> bool:
    """Whether ``textmap`` is the W3C trace context, alone or with W3C baggage, as the
    SDK builds it from ``OTEL_PROPAGATORS`` (unset: ``tracecontext,baggage``)."""
    if type(textmap) is TraceContextTextMapPropagator:
        return True
    if type(textmap) is not CompositePropagator:
        return False
    # The composite keeps its parts in a private list; without it, the slow path.
    kinds = [type(p) for p in getattr(textmap, "_propagators", (None,))]
    return kinds in ([TraceContextTextMapPropagator, W3CBaggagePropagator],
                     [TraceContextTextMapPropagator])  # fmt: skip


class Propagation:
    """Reads and writes trace context in job headers (see the module docstring)."""

    def __init__(self) -> None:
        #: The global textmap last seen and whether it is the default: one tuple, so a
        #: thread never pairs one textmap with another's verdict.
        self._seen: tuple[TextMapPropagator | None, bool] = (None, False)

    def _is_fast(self) -> bool:
        textmap = propagate.get_global_textmap()
        seen, fast = self._seen
        if textmap is not seen:  # one identity check per job; re-read on change
            fast = is_default(textmap)
            self._seen = (textmap, fast)
        return fast

    def extract(self, headers: dict[str, str]) -> Context:
        """The context a job's headers carry (its parent span), as ``propagate.extract``."""
        if not self._is_fast() or "baggage" in headers or "tracestate" in headers:
            return propagate.extract(headers)  # (a trace state has limits to check)
        parent = headers.get("traceparent")
        if parent is None:
            return Context()
        if type(parent) is not str:  # headers are the envelope's: any JSON value
            return propagate.extract(headers)
        found = _CANONICAL.fullmatch(parent)
        if found is None:
            return propagate.extract(headers)
        trace_id, span_id = int(found[1], 16), int(found[2], 16)
        if not trace_id or not span_id:
            return Context()
        flags = TraceFlags(int(found[3], 16))
        span = SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
        return trace.set_span_in_context(NonRecordingSpan(span), Context())

    def inject(self, headers: dict[str, str], span: trace.Span) -> None:
        """Write ``span`` (and the current baggage) into ``headers``, as
        ``propagate.inject`` with ``span`` made current."""
        if not self._is_fast() or baggage.get_all():
            propagate.inject(headers, context=trace.set_span_in_context(span))
            return
        sc = span.get_span_context()
        if sc == trace.INVALID_SPAN_CONTEXT:  # the propagator's test, to the letter
            return
        headers["traceparent"] = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}"
        if sc.trace_state:
            headers["tracestate"] = sc.trace_state.to_header()
