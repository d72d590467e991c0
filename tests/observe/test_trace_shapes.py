"""Traces beyond one send and one process: beat ticks start traces, its drift reaches
/metrics, and retries and dead-letter replays lead back to the job's origin."""

from __future__ import annotations

from functools import partial

import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from stem import Stem
from stem.beat.service import serve_beat
from stem.observe.prometheus import exposition
from stem.observe.tracing import Tracing
from stem.worker import WorkerOptions, serve_worker
from tests.beat.running import ticks, wait_for


async def test_each_beat_tick_is_the_root_of_a_trace_that_holds_its_enqueue(
    redis_url: str, namespace: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Stem(redis_url, namespace=namespace, middleware=[Tracing(provider)])
    app.schedule("t.tick", every_s=0.1, name="traced")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_beat, app, reload_s=0.1))
            await wait_for(lambda: len(ticks(app, "traced")) >= 2)
            nursery.cancel_scope.cancel()
    finally:
        app.close()

    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    sends = [s for s in spans if s.name == "send default"]
    assert len(sends) >= 2
    for send in sends:
        assert send.parent is not None
        tick = by_id[send.parent.span_id]
        assert tick.name == "tick traced"
        assert tick.parent is None  # a new trace per tick
        assert tick.attributes is not None and tick.attributes["stem.schedule.entry"] == "traced"
    assert len({s.context.trace_id for s in sends if s.context is not None}) == len(sends)


async def test_the_last_ticks_drift_reaches_the_exposition_through_beats_presence(
    app: Stem,
) -> None:
    def drift() -> float | None:
        text = exposition(app.broker)
        for family in text_string_to_metric_families(text):
            if family.name == "stem_beat_drift_seconds":
                return float(family.samples[0].value)
        return None

    assert drift() is None  # no beat has fired yet
    app.schedule("t.tick", every_s=0.1, name="drifty")
    async with trio.open_nursery() as nursery:
        beat = await nursery.start(partial(serve_beat, app, reload_s=0.1))
        await wait_for(lambda: drift() is not None)
        stats = beat.statistics()
        nursery.cancel_scope.cancel()
    got = drift()
    assert stats.last_drift_s is not None and stats.last_drift_s >= 0
    assert got is None or got >= 0  # the record may be gone once the beat stopped


async def test_a_retry_links_to_the_send_span_and_a_dlq_replay_stays_in_the_original_trace(
    redis_url: str, namespace: str
) -> None:
    from tests.apps import observed

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Stem(redis_url, namespace=namespace, middleware=[Tracing(provider)])
    app.tasks.update(observed.app.tasks)
    app.retry = observed.app.retry
    job = app.enqueue("tests.apps.observed.fails")
    try:
        for round_ in (1, 2):  # the first run and its retry; then the replay and its retry
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_worker, app, WorkerOptions(burst=True, name="t1"))
            if round_ == 1:
                [entry] = app.broker.dead_entries("default")
                assert app.broker.replay("default", [entry.entry_id]) == [job.id]
    finally:
        app.close()

    spans = exporter.get_finished_spans()
    [send] = [s for s in spans if s.name == "send default"]
    assert send.context is not None
    processes = [s for s in spans if s.name == "process default"]
    assert len(processes) == 4
    for span in processes:
        assert span.context is not None and span.parent is not None
        assert span.context.trace_id == send.context.trace_id
        assert span.parent.span_id == send.context.span_id
    attempts = [dict(s.attributes or {})["stem.attempt"] for s in processes]
    assert attempts == [0, 1, 0, 1]
    for span, attempt in zip(processes, attempts, strict=True):
        if attempt == 0:
            assert not span.links
            continue
        [link] = span.links
        assert link.context.span_id == send.context.span_id
        assert dict(link.attributes or {})["stem.link.reason"] == "retry"
