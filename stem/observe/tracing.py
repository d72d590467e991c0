"""OpenTelemetry traces: a PRODUCER span per enqueue, a CONSUMER span per processed job.

``Tracing`` is a middleware the app installs by itself. On enqueue it opens ``send
<queue>`` and writes the W3C ``traceparent``/``tracestate`` into the envelope's headers
(through the global propagator, so ``OTEL_PROPAGATORS`` applies); in the worker it opens
``process <queue>`` as that span's child, with the messaging semantic-convention
attributes (``messaging.system="stem"``, ``messaging.destination.name``,
``messaging.message.id``, ``messaging.operation``) and ``stem.task``, ``stem.attempt``,
``stem.deliveries``; a task's exception is recorded on it and sets its status to ERROR.
A retry's or a redelivery's span also carries a link to the original send span
(``stem.link.reason``); beat ticks start a trace of their own (:func:`open_root_span`).

With the SDK's own tracer, the job spans are built by :mod:`stem.observe.spans` and the
headers read and written by :mod:`stem.observe.w3c`: the same spans and headers as the
SDK's path, for about a third of its CPU per job (docs/guides/observability.md).

Nothing configured, nothing paid: with no tracer provider set, ``active()`` says so and
a worker skips the hooks (``Middleware.active``); a producer's hook returns after one
cached check. :func:`configure_from_env` installs the SDK's provider when
``OTEL_TRACES_EXPORTER`` names an exporter other than ``none`` (any the installed
packages register, e.g. ``console`` from the SDK, ``otlp`` with
``opentelemetry-exporter-otlp``); service name, resource attributes and sampler come
from the standard ``OTEL_*`` variables through the SDK. An app that sets its own global
provider (``trace.set_tracer_provider``) needs nothing from stem. Spans are batched;
the SDK flushes them at interpreter exit.

The OpenTelemetry API itself is imported when first needed (the span hooks' names by
``_bind_api`` once a tracer exists): every app makes a ``Tracing``, and a process-pool
child, which runs sync tasks and never opens a span, then loads none of it
(tests/test_imports.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from stem.middleware.base import Middleware, OutgoingJob
from stem.observe.logs import span_ids
from stem.outcome import Outcome

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from stem.context import JobContext
    from stem.observe.spans import JobSpan, SpanStarter
    from stem.observe.w3c import Propagation

log = logging.getLogger("stem.observe.tracing")

EXPORTER_ENV = "OTEL_TRACES_EXPORTER"
#: ``stem.outcome`` of a run cancelled before it returned (revoked, or a hard stop).
CANCELLED = "cancelled"

T = TypeVar("T")


def exporter_names(variable: str) -> list[str]:
    """The exporters an ``OTEL_*_EXPORTER`` variable names (comma-separated), without
    ``none``: empty means that signal is off."""
    names = (n.strip() for n in os.environ.get(variable, "").split(","))
    return [n for n in names if n and n != "none"]


_SCOPE = "stem"
#: How often a ``Tracing`` middleware looks the global tracer provider up again, so one
#: set after the app was made counts from then on (in a worker, from its next look at
#: ``active()``, at most ``stem.worker.execute.HOOKS_RECHECK_S`` later).
PROVIDER_RECHECK_S = 1.0


def configure_from_env() -> bool:
    """Install the SDK's tracer provider if ``OTEL_TRACES_EXPORTER`` asks for one.

    Does nothing (and returns False) when the variable is unset or ``none``, or when a
    provider is set already; runs once per process.
    """
    return _from_env.run()


def _install_from_env() -> bool:
    names = exporter_names(EXPORTER_ENV)
    if not names:
        return False
    from opentelemetry import trace
    from opentelemetry.trace import ProxyTracerProvider

    if not isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        return False
    trace.set_tracer_provider(sdk_provider(names))
    return True


class Once:
    """Runs ``install`` on the first ``run()`` of the process (one thread wins) and
    returns what it returned; every later ``run()`` returns False after one check."""

    def __init__(self, install: Callable[[], bool]) -> None:
        self.done = False
        self._install = install
        self._lock = threading.Lock()

    def run(self) -> bool:
        """``install()`` the first time, False after."""
        if self.done:
            return False
        with self._lock:
            if self.done:
                return False
            self.done = True
            return self._install()


_from_env = Once(_install_from_env)


def sdk_provider(exporter_names: list[str]) -> Any:
    """An SDK ``TracerProvider`` that batches spans to the named exporters."""
    from importlib.metadata import entry_points

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "stem"}
    provider = TracerProvider(resource=Resource.create(attributes))
    found = {e.name: e for e in entry_points(group="opentelemetry_traces_exporter")}
    for name in exporter_names:
        if name not in found:
            log.warning("%s=%s: no such span exporter installed (ignored)", EXPORTER_ENV, name)
            continue
        provider.add_span_processor(BatchSpanProcessor(found[name].load()()))
    return provider


class ProviderLookup(Generic[T]):
    """What a middleware derives from an OpenTelemetry provider (a tracer, instruments), or
    None while that signal is off.

    ``pinned`` fixes the provider; otherwise ``current()`` names it, looked up at most
    every ``PROVIDER_RECHECK_S`` (so one set after the app was made counts from then on:
    the API's lookup reads the environment while no provider is set, which cost a bulk
    enqueue of 10,000 jobs about 15 % of its time when done per job). ``derive`` runs
    once per provider.
    """

    def __init__(
        self, pinned: Any, current: Callable[[], Any], derive: Callable[[Any], T | None]
    ) -> None:
        self._pinned = pinned
        self._current = current
        self._derive = derive
        self._provider: Any = None
        self._value: T | None = None
        self._recheck_at = 0.0

    def get(self) -> T | None:
        """The derived value for the provider in use (None: the signal is off)."""
        now = time.monotonic()
        if now < self._recheck_at:
            return self._value
        self._recheck_at = now + PROVIDER_RECHECK_S
        provider = self._pinned or self._current()
        if provider is not self._provider:
            self._provider = provider
            self._value = self._derive(provider)
        return self._value


def _global_tracer_provider() -> Any:
    _from_env.run()
    from opentelemetry import trace

    return trace.get_tracer_provider()


class Tracer(NamedTuple):
    """A provider's tracer, and how job spans are started on it (fast for the SDK's)."""

    tracer: trace.Tracer
    start: SpanStarter
    propagation: Propagation


def _tracer_of(provider: Any) -> Tracer | None:
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

    if isinstance(provider, ProxyTracerProvider | NoOpTracerProvider):
        return None
    _bind_api()
    from stem.observe.spans import span_starter
    from stem.observe.w3c import Propagation

    tracer: trace.Tracer = provider.get_tracer(_SCOPE)
    return Tracer(tracer, span_starter(tracer), Propagation())


def _bind_api() -> None:
    """Import the API names the span hooks use into this module (they run only once a
    tracer exists, and so after this): one import per process instead of one per job."""
    global otel_context, trace, SpanKind, Status, StatusCode, JobSpan
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from stem.observe.spans import JobSpan


class Tracing(Middleware):
    """Producer and consumer spans; see the module docstring.

    ``tracer_provider`` pins a provider (tests, an app that keeps its own); by default
    the global one is used (see :class:`ProviderLookup`).
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        self._lookup: ProviderLookup[Tracer] = ProviderLookup(
            tracer_provider, _global_tracer_provider, _tracer_of
        )

    def active(self) -> bool:
        """Off while no tracer provider is configured: the worker skips the hooks then."""
        return self._lookup.get() is not None

    def tracer(self) -> trace.Tracer | None:
        """The tracer to use, or None while tracing is off (no provider configured)."""
        found = self._lookup.get()
        return None if found is None else found.tracer

    def before_enqueue(self, job: OutgoingJob) -> None:
        found = self._lookup.get()
        if found is None:
            return
        attributes: dict[str, str | int] = {
            "messaging.system": "stem",
            "messaging.operation": "publish",
            "messaging.destination.name": job.queue,
            "messaging.message.id": job.job_id,
            "stem.task": job.task,
        }
        span = found.start(f"send {job.queue}", SpanKind.PRODUCER, None, attributes, ())
        # Ended at once: the span marks the send; a failed enqueue must not leave it open.
        found.propagation.inject(job.headers, span)
        span.end()

    def before_process(self, ctx: JobContext) -> None:
        found = self._lookup.get()
        if found is None:
            return
        attributes: dict[str, str | int] = {
            "messaging.system": "stem",
            "messaging.operation": "process",
            "messaging.destination.name": ctx.queue,
            "messaging.message.id": ctx.job_id,
            "stem.task": ctx.task,
            "stem.attempt": ctx.attempt,
            "stem.deliveries": ctx.deliveries,
        }
        parent = found.propagation.extract(ctx.headers)
        links = _links_to_origin(ctx, parent)
        span = found.start(f"process {ctx.queue}", SpanKind.CONSUMER, parent, attributes, links)
        token = otel_context.attach(trace.set_span_in_context(span))
        ctx.state[_OPENED] = (span, token)

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        opened = ctx.state.pop(_OPENED, None)  # first: most jobs have no span to end
        if opened is not None:
            _end(opened, outcome.verdict.value, outcome.error)

    def on_cancelled(self, ctx: JobContext) -> None:
        # Revoked while running, or a hard stop: the span still ends (and is exported),
        # and the job's context leaves the runner, which goes on to other jobs.
        opened = ctx.state.pop(_OPENED, None)
        if opened is not None:
            _end(opened, CANCELLED, None)


#: The ``JobContext.state`` key of a job's open ``process`` span and its context token.
_OPENED = "stem.tracing.span"


def job_span_ids(ctx: JobContext) -> tuple[str, str]:
    """The trace and span id, in hex, of the ``process`` span ``Tracing`` opened for the
    job; empty strings while it has none (tracing off). Read from the job's state, not
    from the OpenTelemetry context: that lookup is seven calls a job with tracing off."""
    opened = ctx.state.get(_OPENED)
    if opened is None:
        return "", ""
    return span_ids(opened[0].get_span_context())


def _end(opened: tuple[Any, Any], verdict: str, error: BaseException | None) -> None:
    """End a job's ``process`` span with its outcome and leave its context."""
    span, token = opened
    try:
        _set_own(span, "stem.outcome", verdict)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()
    finally:  # a span processor that raises must not leave the span current
        otel_context.detach(token)


@contextlib.contextmanager
def open_root_span(
    tracing: Tracing | None, name: str, attributes: Mapping[str, str | int]
) -> Iterator[Any]:
    """A span that starts a new trace, current while the block runs (``None`` and no span
    while tracing is off). Beat opens one per tick (``tick <entry>``): the tick's ``send``
    span, and the job's ``process`` spans after it, are its descendants."""
    tracer = tracing.tracer() if tracing is not None else None
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(
        name, context=otel_context.Context(), kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield span


def _links_to_origin(ctx: JobContext, parent: otel_context.Context) -> list[trace.Link]:
    """A retry or a redelivery links to the send span that started the job: a backend
    that shows only a span's own trace then still leads from each attempt to the origin.
    (The envelope keeps its ``traceparent``, so retries, redeliveries and dead-letter
    replays are also children of that send span, in the original trace.)"""
    if ctx.attempt == 0 and ctx.deliveries <= 1:
        return []
    origin = trace.get_current_span(parent).get_span_context()
    if not origin.is_valid:
        return []
    reason = "retry" if ctx.attempt > 0 else "redelivery"
    return [trace.Link(origin, {"stem.link.reason": reason, "stem.attempt": ctx.attempt})]


def _set_own(span: trace.Span, key: str, value: str) -> None:
    """Set one of stem's attributes: without the SDK's per-key check on a job span."""
    if type(span) is JobSpan:
        span.set_own(key, value)
    else:
        span.set_attribute(key, value)


def trace_id_from_headers(headers: dict[str, str]) -> str:
    """The trace id in a W3C ``traceparent`` header (``""`` without a valid one)."""
    parts = headers.get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""
