"""stem's job spans and header propagation export what the SDK's own path would.

Each test runs the same span through ``Tracer.start_span`` (the SDK) and through
:class:`FastSpans` (stem's job spans), or the same headers through ``propagate`` and
:class:`Propagation`, and compares what comes out.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from stem.context import JobContext
from stem.observe.spans import FastSpans, JobSpan, span_starter
from stem.observe.tracing import Tracing
from stem.observe.w3c import Propagation
from stem.outcome import Outcome


def sdk_tracer(tracer: trace.Tracer) -> SdkTracer:
    assert isinstance(tracer, SdkTracer)
    return tracer


PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ATTRIBUTES: dict[str, str | int] = {"messaging.system": "stem", "stem.task": "t", "stem.attempt": 2}


def provider(
    sampler: Sampler | None = None, limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    made = TracerProvider(sampler=sampler, span_limits=limits)
    exporter = InMemorySpanExporter()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    return made, exporter


def run_both(
    sampler: Sampler | None = None,
    limits: SpanLimits | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    links: Callable[[], list[Link]] | None = None,
) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """The exported spans of one consumer span started the SDK's way and stem's way,
    each under its own provider (so each gets its own ids)."""
    found = []
    for fast in (False, True):
        made, exporter = provider(sampler, limits)
        tracer = made.get_tracer("stem")
        parent = propagate.extract(headers if headers is not None else {"traceparent": PARENT})
        origin = trace.get_current_span(parent).get_span_context()
        if links is None:
            made_links = [Link(origin, {"stem.link.reason": "retry"})] if origin.is_valid else []
        else:
            made_links = links()  # fresh for each path: the SDK's changes the links given
        if fast:
            span = FastSpans(sdk_tracer(tracer)).start(
                "process q", SpanKind.CONSUMER, parent, dict(ATTRIBUTES), made_links
            )
        else:
            span = tracer.start_span(
                "process q", parent, SpanKind.CONSUMER, dict(ATTRIBUTES), made_links
            )
        if body is not None:
            body(span)
        span.end()
        found.append(list(exporter.get_finished_spans()))
    return found[0], found[1]


def shape(span: ReadableSpan) -> dict[str, Any]:
    """What an exporter sees of a span, less ids and times (each path makes its own)."""
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": span.parent,
        "trace_id": span.context.trace_id if span.parent else None,
        "flags": span.context.trace_flags,
        "trace_state": span.context.trace_state,
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        "events": [
            (e.name, {k: v for k, v in (e.attributes or {}).items() if k != "exception.stacktrace"})
            for e in span.events
        ],
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource.attributes,
        "scope": span.instrumentation_scope,
        "timed": span.start_time is not None and span.end_time is not None,
    }


def test_a_job_span_exports_what_the_sdks_span_exports() -> None:
    sdk, fast = run_both()
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]
    assert len(fast) == 1


def test_an_exception_status_and_late_attributes_are_exported_alike() -> None:
    def body(span: Any) -> None:
        try:
            raise ValueError("boom")
        except ValueError as exc:
            span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, "ValueError"))
        span.set_status(StatusCode.OK)  # an error may become OK
        span.set_status(StatusCode.ERROR, "ignored after OK")
        span.set_attribute("user.key", ("a", "b"))
        span.set_attributes({"user.number": 1.5, "stem.outcome": "retry"})
        span.add_event("note", {"n": 1})
        span.update_name("process renamed")

    sdk, fast = run_both(body=body)
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]
    assert fast[0].events[0].attributes is not None
    assert "ValueError: boom" in str(fast[0].events[0].attributes["exception.stacktrace"])


@pytest.mark.parametrize(
    "limits",
    [
        SpanLimits(max_span_attributes=4, max_span_attribute_length=3),
        SpanLimits(max_span_attributes=4),
        SpanLimits(max_span_attributes=3),
        SpanLimits(max_span_attribute_length=1),
    ],
    ids=["count_and_length", "count", "count_reached_at_start", "length"],
)
def test_a_job_span_keeps_the_span_limits_as_the_sdk_does(limits: SpanLimits) -> None:
    def body(span: Any) -> None:
        set_own = getattr(span, "set_own", span.set_attribute)  # what stem sets at the end
        set_own("stem.outcome", "complete")
        span.set_attribute("long", "abcdef")
        span.set_attribute("one.too.many", 1)

    sdk, fast = run_both(limits=limits, body=body)
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]
    assert fast[0].dropped_attributes == sdk[0].dropped_attributes


@pytest.mark.parametrize(
    "sampler",
    [ALWAYS_ON, ALWAYS_OFF, ParentBased(ALWAYS_OFF), None],
    ids=["always_on", "always_off", "parent_based_off", "default"],
)
@pytest.mark.parametrize(
    "parent",
    [PARENT, PARENT[:-2] + "00", None],
    ids=["sampled_parent", "unsampled_parent", "no_parent"],
)
def test_the_tracers_sampler_decides_as_it_does_for_the_sdk(
    sampler: Sampler | None, parent: str | None
) -> None:
    headers = {"traceparent": parent} if parent else {}
    sdk, fast = run_both(sampler=sampler, headers=headers)
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]


def test_a_dropped_span_still_carries_the_trace_to_the_next_hop() -> None:
    tracer = provider(ALWAYS_OFF)[0].get_tracer("stem")
    parent = propagate.extract({"traceparent": PARENT})
    span = FastSpans(sdk_tracer(tracer)).start("send q", SpanKind.PRODUCER, parent, {}, [])
    assert not span.is_recording()
    context = span.get_span_context()
    assert context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert context.is_valid and not context.trace_flags.sampled


def test_an_ended_job_span_ignores_changes_and_a_second_end() -> None:
    made, exporter = provider()
    span = FastSpans(sdk_tracer(made.get_tracer("stem"))).start(
        "p", SpanKind.CONSUMER, None, {}, []
    )
    assert isinstance(span, JobSpan)
    span.end()
    span.set_attribute("late", 1)
    span.add_event("late")
    span.end()
    [exported] = exporter.get_finished_spans()
    assert dict(exported.attributes or {}) == {} and exported.events == ()


def test_a_tracer_that_is_not_the_sdks_starts_spans_its_own_way() -> None:
    tracer = trace.NoOpTracer()
    span = span_starter(tracer)("p", SpanKind.CONSUMER, None, {}, [])
    assert type(span) is trace.NonRecordingSpan


# -- propagation --------------------------------------------------------------------------

HEADERS = [
    {"traceparent": PARENT},
    {"traceparent": PARENT, "tracestate": "vendor=1,other=two"},
    {"traceparent": PARENT[:-2] + "00"},
    {"traceparent": PARENT[:-2] + "03"},
    {"traceparent": PARENT.upper()},
    {"traceparent": " " + PARENT},
    {"traceparent": PARENT + "-extra"},
    {"traceparent": "01" + PARENT[2:] + "-future"},
    {"traceparent": "ff" + PARENT[2:]},
    {"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"},
    {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01"},
    {"traceparent": "garbage"},
    {"traceparent": ""},
    {"traceparent": PARENT, "baggage": "user=alice"},
    {},
]


@pytest.mark.parametrize("headers", HEADERS, ids=[str(h) for h in HEADERS])
def test_headers_are_read_as_the_global_propagator_reads_them(headers: dict[str, str]) -> None:
    expected = propagate.extract(headers)
    actual = Propagation().extract(headers)
    assert read(actual) == read(expected)


def read(context: Context) -> tuple[Any, ...]:
    """What a context holds: its keys, its span's context, its baggage."""
    span = trace.get_current_span(context).get_span_context()
    return sorted(context), span, dict(baggage.get_all(context))


def test_headers_are_written_as_the_global_propagator_writes_them() -> None:
    for state in (None, "vendor=1"):
        source = {"traceparent": PARENT, **({"tracestate": state} if state else {})}
        span = trace.get_current_span(propagate.extract(source))
        expected: dict[str, str] = {}
        propagate.inject(expected, context=trace.set_span_in_context(span))
        actual: dict[str, str] = {}
        Propagation().inject(actual, span)
        assert actual == expected == source


def test_current_baggage_is_written_by_the_global_propagator() -> None:
    span = trace.get_current_span(propagate.extract({"traceparent": PARENT}))
    token = otel_context.attach(baggage.set_baggage("user", "alice"))
    try:
        actual: dict[str, str] = {}
        Propagation().inject(actual, span)
    finally:
        otel_context.detach(token)
    assert actual == {"traceparent": PARENT, "baggage": "user=alice"}


class Custom(TextMapPropagator):
    """A propagator of its own header, to show the global one is what is used."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return Context({"custom": getter.get(carrier, "x-custom")})

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        setter.set(carrier, "x-custom", "1")

    @property
    def fields(self) -> set[str]:
        return {"x-custom"}


@pytest.fixture
def custom_textmap() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(Custom())
    yield
    propagate.set_global_textmap(saved)


@pytest.mark.usefixtures("custom_textmap")
def test_a_textmap_the_app_set_is_used_for_reading_and_writing() -> None:
    propagation = Propagation()
    assert propagation.extract({"traceparent": PARENT, "x-custom": "v"}) == Context(
        {"custom": ["v"]}
    )
    span = trace.get_current_span(propagate.extract({}))
    written: dict[str, str] = {}
    propagation.inject(written, span)
    assert written == {"x-custom": "1"}


# -- what the review of the first version found -------------------------------------------


def test_the_default_tracer_takes_the_fast_path() -> None:
    """Without this, every comparison above could pass with the fast path never taken."""
    made, _ = provider()
    span = span_starter(made.get_tracer("stem"))("p", SpanKind.CONSUMER, None, {}, [])
    assert type(span) is JobSpan


def test_canonical_headers_are_read_without_the_global_propagator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Context:
        raise AssertionError("the fast path called propagate.extract")

    monkeypatch.setattr(propagate, "extract", refuse)
    context = Propagation().extract({"traceparent": PARENT})
    assert trace.get_current_span(context).get_span_context().span_id == 0xB7AD6B7169203331


class Reads(SpanProcessor):
    """A processor that reads the live span in ``on_start``, as Sentry's does."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self.seen.append(
            (span.name, span.kind, span.parent, dict(span.attributes), span.start_time > 0)
        )


def test_a_processor_reads_a_job_span_in_on_start_as_it_reads_the_sdks() -> None:
    seen = []
    for fast in (False, True):
        reads = Reads()
        made = TracerProvider()
        made.add_span_processor(reads)
        tracer = made.get_tracer("stem")
        parent = propagate.extract({"traceparent": PARENT})
        if fast:
            span = FastSpans(sdk_tracer(tracer)).start(
                "process q", SpanKind.CONSUMER, parent, dict(ATTRIBUTES), []
            )
        else:
            span = tracer.start_span("process q", parent, SpanKind.CONSUMER, dict(ATTRIBUTES))
        span.end()
        seen.append(reads.seen)
    assert seen[1] == seen[0] and len(seen[0]) == 1


def test_events_and_links_beyond_the_limits_are_dropped_as_the_sdk_drops_them() -> None:
    limits = SpanLimits(max_events=2, max_links=2, max_link_attributes=1)

    def origins() -> list[Link]:
        return [Link(SpanContext(i, i, True), {"a": 1, "b": 2}) for i in range(1, 4)]

    def body(span: Any) -> None:
        for i in range(5):
            span.add_event(f"e{i}")
        span.add_link(trace.INVALID_SPAN_CONTEXT, {"reason": "kept: it has attributes"})
        span.add_link(trace.INVALID_SPAN_CONTEXT)  # dropped: nothing to link to

    sdk, fast = run_both(limits=limits, body=body, links=origins)
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]
    counts = [(s.dropped_events, s.dropped_links) for s in (sdk[0], fast[0])]
    assert counts[1] == counts[0] == (3, 2)


def test_an_exception_leaving_a_job_span_used_as_a_context_manager_is_recorded() -> None:
    def body(span: Any) -> None:
        with pytest.raises(ValueError), span:
            raise ValueError("boom")

    sdk, fast = run_both(body=body)
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]
    assert fast[0].status.description == "ValueError: boom"


class Tagging(ParentBased):
    """A sampler of the default's shape that adds an attribute of its own."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        result = super().should_sample(*args, **kwargs)
        return SamplingResult(result.decision, {"sampler.rule": "x"}, result.trace_state)


def test_a_sampler_like_the_default_is_still_asked() -> None:
    sdk, fast = run_both(sampler=Tagging(ALWAYS_ON))
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]
    assert dict(fast[0].attributes or {})["sampler.rule"] == "x"


def test_processors_running_concurrently_lose_no_attribute_of_a_job_span() -> None:
    """Two processors set an attribute each at the same moment (a barrier, and threads
    switched as often as the interpreter allows): without the span's lock, one of the two
    was lost on about 1 span in 300."""
    both = threading.Barrier(2)

    class Tag(SpanProcessor):
        def __init__(self, key: str) -> None:
            self.key = key

        def on_start(self, span: Any, parent_context: Context | None = None) -> None:
            both.wait(timeout=10)
            span.set_attribute(self.key, 1)

    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    concurrent = ConcurrentMultiSpanProcessor(2)
    made = TracerProvider(active_span_processor=concurrent)
    exporter = InMemorySpanExporter()
    for processor in (Tag("a"), Tag("b"), SimpleSpanProcessor(exporter)):
        made.add_span_processor(processor)
    spans = FastSpans(sdk_tracer(made.get_tracer("stem")))
    try:
        for _ in range(2000):
            spans.start("p", SpanKind.CONSUMER, None, dict(ATTRIBUTES), []).end()
    finally:
        sys.setswitchinterval(saved)
        made.shutdown()
    finished = exporter.get_finished_spans()
    assert len(finished) == 2000
    assert [s for s in finished if not {"a", "b"} <= set(s.attributes or {})] == []


def test_a_trace_state_over_the_w3c_limit_is_read_as_the_propagator_reads_it() -> None:
    state = ",".join(f"vendor{i}={'x' * 250}" for i in range(32))
    headers = {"traceparent": PARENT, "tracestate": state}
    assert read(Propagation().extract(headers)) == read(propagate.extract(headers))


# -- what the second review found ----------------------------------------------------------


def test_a_warning_about_an_ended_span_may_touch_the_span_again() -> None:
    """A logging handler that adds log lines to the current span as events gets the
    span's "ended" warning; the span must not hold its lock while it logs it."""
    made, _ = provider()
    span = FastSpans(sdk_tracer(made.get_tracer("stem"))).start(
        "p", SpanKind.CONSUMER, None, {}, []
    )
    span.end()
    busy = threading.local()

    class SpanEvents(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if not getattr(busy, "on", False):
                busy.on = True
                try:
                    span.add_event("log", {"msg": record.getMessage()})
                finally:
                    busy.on = False

    handler = SpanEvents()
    handler.lock = None  # if the span deadlocks, logging.shutdown must not wait on it at exit
    logging.getLogger("opentelemetry.sdk.trace").addHandler(handler)
    try:
        late = threading.Thread(target=span.add_event, args=("late",), daemon=True)
        late.start()
        late.join(timeout=10)
    finally:
        logging.getLogger("opentelemetry.sdk.trace").removeHandler(handler)
    assert not late.is_alive()


def test_a_status_that_is_neither_a_status_nor_a_code_is_ignored() -> None:
    def body(span: Any) -> None:
        span.set_status("ERROR")

    sdk, fast = run_both(body=body)
    assert [shape(s) for s in fast] == [shape(s) for s in sdk]
    assert fast[0].status.status_code is StatusCode.UNSET


def test_a_traceparent_that_is_not_text_is_read_by_the_propagator() -> None:
    headers: dict[str, Any] = {"traceparent": [PARENT]}
    assert read(Propagation().extract(headers)) == read(propagate.extract(headers))


def test_a_tracer_turned_off_by_the_sdks_configurator_records_nothing() -> None:
    from opentelemetry.sdk.trace import _disable_tracer_configurator  # experimental

    exported = []
    for fast in (False, True):
        made, exporter = provider()
        tracer = made.get_tracer("stem")
        spans = FastSpans(sdk_tracer(tracer))
        made._set_tracer_configurator(tracer_configurator=_disable_tracer_configurator)
        if fast:
            span = spans.start("p", SpanKind.CONSUMER, None, {}, [])
        else:
            span = tracer.start_span("p", None, SpanKind.CONSUMER, {})
        span.end()
        exported.append((type(span).__name__, len(exporter.get_finished_spans())))
    assert exported[1] == exported[0] == ("NonRecordingSpan", 0)


# -- what the third review found (end to end) ---------------------------------------------


def test_changes_to_an_ended_job_span_warn_as_the_sdks_span_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warned = []
    for fast in (False, True):
        made, _ = provider()
        tracer = made.get_tracer("stem")
        if fast:
            span: Any = FastSpans(sdk_tracer(tracer)).start("p", SpanKind.CONSUMER, None, {}, [])
        else:
            span = tracer.start_span("p", None, SpanKind.CONSUMER, {})
        span.end()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            getattr(span, "set_own", span.set_attribute)("stem.outcome", "complete")
            span.set_attribute("k", 1)
            span.add_event("e")
            span.add_link(SpanContext(1, 1, True))
            span.update_name("q")
            span.set_status(StatusCode.ERROR)
            span.end()
        warned.append([(r.name, r.getMessage()) for r in caplog.records])
    assert warned[1] == warned[0] and len(warned[0]) == 7


class Raises(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("an exporter's processor failed")


def test_a_processor_that_raises_at_the_end_leaves_no_span_current() -> None:
    made = TracerProvider()
    made.add_span_processor(Raises())
    tracing = Tracing(made)
    job = JobContext("j1", "t", "q", 0, 1, [], {}, {"traceparent": PARENT})
    before = trace.get_current_span()
    tracing.before_process(job)
    assert trace.get_current_span() is not before
    with pytest.raises(RuntimeError):
        tracing.after_process(job, Outcome.complete("null"))
    assert trace.get_current_span() is before


def test_a_run_cancelled_before_it_returns_still_ends_and_exports_its_span() -> None:
    made, exporter = provider()
    tracing = Tracing(made)
    job = JobContext("j1", "t", "q", 0, 1, [], {}, {"traceparent": PARENT})
    before = trace.get_current_span()
    tracing.before_process(job)
    tracing.on_cancelled(job)  # revoked while it ran, or a hard stop
    assert trace.get_current_span() is before
    [span] = exporter.get_finished_spans()
    assert (span.name, dict(span.attributes or {})["stem.outcome"]) == ("process q", "cancelled")
