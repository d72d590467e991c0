"""Job spans built for the SDK's span processors without the SDK's general-purpose span.

Every job costs a ``send`` span where it is enqueued and a ``process`` span where it runs.
Through ``Tracer.start_span`` the consumer side cost ~70 µs of CPU per job on this
machine's reference run (extract, start, attach, end, detach; a no-op job costs ~70 µs in
all), most of it in checks the SDK makes on every attribute of every span (a lock and a
clean per key) and in bookkeeping for features a job span never uses. :class:`FastSpans`
starts the same span for a fraction of that (docs/guides/observability.md has the
figures), doing what the SDK's tracer does, through the tracer's public attributes:

* the tracer's ``sampler`` decides (its attributes and trace state are the span's; the
  SDK's default, ``parentbased_always_on``, is applied without the call), its
  ``id_generator`` makes the ids, the W3C random-trace-id flag is carried as the SDK
  carries it;
* the tracer's ``span_processor`` sees ``on_start`` with the live span and ``on_end``
  with a frozen :class:`~opentelemetry.sdk.trace.ReadableSpan` carrying the tracer's
  ``resource`` and instrumentation scope, as for any SDK span;
* stem's own attributes are strings and integers and skip the per-key clean; anything
  set through the span's API (by a task on ``trace.get_current_span()``, or by a span
  processor) goes through ``BoundedAttributes`` under the span limits, as in the SDK.
  Events (``record_exception`` included) follow the SDK's shape and limits.

What it does not do: the SDK's experimental self-metrics
(``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``) are not recorded. :func:`span_starter`
uses it only for the SDK's own ``Tracer``; any other tracer (an app's own provider, a
vendor's distribution) gets ``start_span``.
tests/observe/test_spans.py holds the exported spans of both paths side by side.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import DEFAULT_ON
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

#: The SDK's own logger, and below its own messages: a filter an app set on the SDK's
#: "ended span" warnings applies to job spans too.
log = logging.getLogger("opentelemetry.sdk.trace")

#: A mutable attribute mapping (a dict of stem's own values, or ``BoundedAttributes``).
Attributes = dict[str, Any] | BoundedAttributes


#: Starts a span, not made current, as ``Tracer.start_span`` would:
#: ``(name, kind, parent context, attributes, links) -> span``.
SpanStarter = Callable[
    [str, SpanKind, otel_context.Context | None, Attributes, Sequence[Link]], trace.Span
]


def span_starter(tracer: trace.Tracer) -> SpanStarter:
    """:class:`FastSpans` for the SDK's tracer, ``tracer.start_span`` for any other."""
    if type(tracer) is SdkTracer:
        return FastSpans(tracer).start
    return lambda name, kind, parent, attributes, links: tracer.start_span(
        name, context=parent, kind=kind, attributes=attributes, links=links
    )


class FastSpans:
    """Starts :class:`JobSpan` s for one SDK tracer; see the module docstring."""

    def __init__(self, tracer: SdkTracer) -> None:
        self.tracer = tracer  # its resource is read per span: the SDK renews it in a fork
        self.sampler = tracer.sampler
        self.id_generator = tracer.id_generator
        self.processor = tracer.span_processor
        self.instrumentation_info = tracer.instrumentation_info
        # Private in the SDK: read when present, else what the SDK would have made.
        self.scope = getattr(tracer, "_instrumentation_scope", None) or InstrumentationScope(
            tracer.instrumentation_info.name, tracer.instrumentation_info.version
        )
        self.limits: SpanLimits = getattr(tracer, "_span_limits", None) or SpanLimits()
        is_random = getattr(self.id_generator, "is_trace_id_random", None)
        self._random_ids = bool(is_random()) if is_random is not None else False
        self._on_ending = getattr(self.processor, "_on_ending", None)
        # The SDK's (experimental, private) tracer configurator can turn a tracer off.
        self._is_enabled: Callable[[], bool] | None = getattr(tracer, "_is_enabled", None)
        # The SDK's default (what TracerProvider() and OTEL_TRACES_SAMPLER unset or
        # ``parentbased_always_on`` give: this very object): sample what the parent
        # sampled, and every root.
        self._default_sampler = self.sampler is DEFAULT_ON

    def start(
        self,
        name: str,
        kind: SpanKind,
        parent: otel_context.Context | None,
        attributes: Attributes,
        links: Sequence[Link],
    ) -> trace.Span:
        """A recording :class:`JobSpan`, or a non-recording span if the sampler drops it."""
        parent_span = trace.get_current_span(parent).get_span_context()
        if self._is_enabled is not None and not self._is_enabled():
            return trace.NonRecordingSpan(parent_span)  # a tracer turned off, as the SDK
        if parent_span.is_valid:
            trace_id, random_id = parent_span.trace_id, _random_flag(parent_span.trace_flags)
            parent_or_none: trace.SpanContext | None = parent_span
        else:
            trace_id, random_id = self.id_generator.generate_trace_id(), self._random_ids
            parent_or_none = None
        if self._default_sampler:  # its decision, without building a SamplingResult
            recording = is_sampled = parent_or_none is None or parent_span.trace_flags.sampled
            state = None if parent_or_none is None else parent_span.trace_state
            own = attributes if self.fits(attributes) else self.bounded(attributes)
        else:
            sampled = self.sampler.should_sample(parent, trace_id, name, kind, attributes, links)
            recording = sampled.decision.is_recording()  # type: ignore[no-untyped-call]
            is_sampled = sampled.decision.is_sampled()  # type: ignore[no-untyped-call]
            state = sampled.trace_state
            own = self.bounded(sampled.attributes)  # a sampler's own: checked, as the SDK
        flags = TraceFlags.SAMPLED if is_sampled else TraceFlags.DEFAULT
        if random_id:
            flags |= _RANDOM_TRACE_ID
        span_id = self.id_generator.generate_span_id()
        context = trace.SpanContext(trace_id, span_id, False, TraceFlags(flags), state)
        if not recording:
            return trace.NonRecordingSpan(context)
        span = JobSpan(self, name, kind, context, parent_or_none, own, self._links(links))
        self.processor.on_start(span, parent_context=parent)  # type: ignore[arg-type]
        return span

    def fits(self, attributes: Attributes, more: int = 0) -> bool:
        """Whether ``attributes`` (and ``more``) need nothing from the span limits: few
        enough, and no length limit that a value could exceed."""
        limits = self.limits
        count = limits.max_span_attributes
        if limits.max_span_attribute_length is not None:
            return False
        return count is None or len(attributes) + more <= count

    def bounded(self, attributes: Mapping[str, Any] | None) -> BoundedAttributes:
        """``attributes`` under the span limits, as the SDK keeps a span's."""
        limits = self.limits
        return BoundedAttributes(
            limits.max_span_attributes,
            attributes,
            immutable=False,
            max_value_len=limits.max_span_attribute_length,
        )

    def link(self, context: trace.SpanContext, attributes: Any) -> Link | None:
        """A link as the SDK keeps one (its attributes under the limits), or None for one
        the SDK drops (no valid context, and neither attributes nor trace state)."""
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return None
        limits = self.limits
        checked = BoundedAttributes(
            limits.max_link_attributes,
            attributes,
            max_value_len=limits.max_attribute_length,
            immutable=True,
        )
        return Link(context, checked)

    def _links(self, links: Sequence[Link]) -> Sequence[Link]:
        if not links:
            return ()
        kept = [made for k in links if k and (made := self.link(k.context, k.attributes))]
        return BoundedList.from_seq(self.limits.max_links, kept)

    def finish(self, span: JobSpan) -> None:
        """Hand an ended span to the processors, frozen (as the SDK's ``Span.end``)."""
        if self._on_ending is not None:
            self._on_ending(span)
        self.processor.on_end(span.frozen())


class JobSpan(ReadableSpan, trace.Span):
    """A recording span for one enqueue or one run (see the module docstring).

    Readable like the SDK's span (processors' ``on_start`` may read it); changed under a
    lock, as the SDK's (a sync task's thread and span processors may share it); its end
    hands a frozen ``ReadableSpan`` to the tracer's processors.
    """

    def __init__(
        self,
        spans: FastSpans,
        name: str,
        kind: SpanKind,
        context: trace.SpanContext,
        parent: trace.SpanContext | None,
        attributes: Attributes,
        links: Sequence[Link],
    ) -> None:
        super().__init__(
            name=name,
            context=context,
            parent=parent,
            resource=spans.tracer.resource,
            attributes=attributes,
            links=links,
            kind=kind,
            instrumentation_info=spans.instrumentation_info,
            status=_UNSET,
            start_time=time.time_ns(),
            instrumentation_scope=spans.scope,
        )
        self._spans = spans
        self._lock = threading.Lock()
        self._attributes: Attributes
        self._events: Sequence[Event]
        self._links: Sequence[Link]

    # -- what stem itself sets (known to be clean) ------------------------------------

    def set_own(self, key: str, value: str | int) -> None:
        """Set one of stem's own attributes (a string or an int: no clean needed while
        the span limits cannot apply). The plain dict is replaced, not changed: a reader
        of ``attributes`` holds a view of the old one."""
        with self._lock:
            fast = self._end_time is None and type(self._attributes) is dict
            if fast and self._spans.fits(self._attributes, 1):
                self._attributes = {**self._attributes, key: value}
                return
        self.set_attribute(key, value)  # (on an ended span: its warning)

    # -- the Span API -----------------------------------------------------------------

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    def get_span_context(self) -> trace.SpanContext:
        return self._context  # type: ignore[return-value]  # always set: see FastSpans.start

    def is_recording(self) -> bool:
        return self._end_time is None

    def _change(self, change: Callable[[], None], warning: str) -> None:
        """Run ``change`` under the lock unless the span has ended; the SDK's warning
        (outside the lock: a logging handler may touch the span) if it had."""
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                change()
        if ended:
            log.warning(warning)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        def change() -> None:
            if type(self._attributes) is dict:  # the first from outside: checked from now on
                self._attributes = self._spans.bounded(self._attributes)
            for key, value in attributes.items():
                self._attributes[key] = value

        self._change(change, "Setting attribute on ended span.")

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.set_attributes({key: value})

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp: int | None = None,
    ) -> None:
        limits = self._spans.limits
        checked = BoundedAttributes(
            limits.max_event_attributes,
            attributes,
            immutable=True,
            max_value_len=limits.max_attribute_length,
        )
        event = Event(name, checked, timestamp)

        def change() -> None:
            if type(self._events) is not BoundedList:
                self._events = BoundedList(limits.max_events)
            self._events.append(event)

        self._change(change, _ENDED % "_add_event")

    def add_link(
        self, context: trace.SpanContext, attributes: Mapping[str, AttributeValue] | None = None
    ) -> None:
        link = self._spans.link(context, attributes)
        if link is None:
            return

        def change() -> None:
            if type(self._links) is not BoundedList:
                self._links = BoundedList(self._spans.limits.max_links)
            self._links.append(link)

        self._change(change, _ENDED % "_add_link")

    def update_name(self, name: str) -> None:
        def change() -> None:
            self._name = name

        self._change(change, _ENDED % "update_name")

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        def change() -> None:
            # As the SDK: an OK status is final, UNSET replaces nothing, and anything
            # that is neither a Status nor a StatusCode is ignored.
            if self._status.status_code is StatusCode.OK:
                return
            if isinstance(status, Status):
                if status.status_code is not StatusCode.UNSET:
                    self._status = status
            elif isinstance(status, StatusCode) and status is not StatusCode.UNSET:
                self._status = Status(status, description)

        self._change(change, _ENDED % "set_status")

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        described: dict[str, AttributeValue] = {
            "exception.type": f"{module}.{kind.__qualname__}"
            if module and module != "builtins"
            else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            described.update(attributes)
        self.add_event("exception", described, timestamp)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """As the SDK's span used as a context manager: an exception leaving the block
        is recorded and sets the status to ERROR; the span ends."""
        if exc_val is not None and self.is_recording():
            self.record_exception(exception=exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                self._end_time = end_time if end_time is not None else time.time_ns()
        if ended:
            log.warning("Calling end() on an ended span.")
        else:
            self._spans.finish(self)

    # -- what the processors get --------------------------------------------------------

    def frozen(self) -> ReadableSpan:
        """The ended span as the SDK hands it to ``on_end`` (what exporters take); nothing
        changes an ended span, so the two share their attributes, events and links."""
        return ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=self._resource,
            attributes=self._attributes,
            events=self._events,
            links=self._links,
            kind=self._kind,
            instrumentation_info=self._spans.instrumentation_info,
            status=self._status,
            start_time=self._start_time,
            end_time=self._end_time,
            instrumentation_scope=self._instrumentation_scope,
        )


def _random_flag(flags: int) -> bool:
    return bool(flags & _RANDOM_TRACE_ID)


#: The W3C trace-context level 2 flag (the SDK sets it when its ids are random; older
#: SDKs have no name for it, nor ``IdGenerator.is_trace_id_random``).
_RANDOM_TRACE_ID = 0x02

_UNSET = Status(StatusCode.UNSET)
_ENDED = "Tried calling %s on an ended span."  # the SDK's words (its method names too)
