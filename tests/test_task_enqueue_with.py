"""``task.enqueue_with(...)(*args)``: enqueue with options (Celery's ``apply_async``)."""

from __future__ import annotations

import datetime as dt
import json

from stem import JobState, Stem
from stem.broker import Settlement
from stem.outcome import Verdict


def test_enqueue_with_sends_every_option_and_the_arguments(app: Stem) -> None:
    @app.task
    def resize(image_id: int, width: int = 100) -> None: ...

    eta = dt.datetime(2031, 1, 1, 9, tzinfo=dt.UTC)
    handle = resize.enqueue_with(
        queue="high",
        priority=7,
        eta=eta,
        idempotency_key="resize-42",
        job_id="resize-42-job",
        headers={"tenant": "acme"},
    )(42, width=800)
    record = handle.info()
    assert record is not None
    envelope = json.loads(record.envelope)
    assert (handle.id, handle.queue, handle.created) == ("resize-42-job", "high", True)
    assert (record.state, record.eta_ms) == (JobState.SCHEDULED, int(eta.timestamp() * 1000))
    assert (envelope["args"], envelope["kwargs"], envelope["priority"]) == (
        [42],
        {"width": 800},
        7,
    )
    assert record.headers == {"tenant": "acme"}


def test_enqueue_with_a_repeated_idempotency_key_returns_the_first_job(app: Stem) -> None:
    @app.task
    def report() -> None: ...

    send = report.enqueue_with(idempotency_key="report-1", delay_s=60)
    first, again = send(), send()
    assert (again.id, again.created) == (first.id, False)


def test_a_records_result_value_is_the_decoded_result(app: Stem) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    handle = add.enqueue(1, 2)
    [delivery] = app.broker.fetch("default", "test-worker", 1)
    app.broker.settle([Settlement(delivery, Verdict.COMPLETE, json.dumps({"sum": 3}))])
    record = handle.info()
    assert record is not None
    assert (record.result, record.result_value) == ('{"sum": 3}', {"sum": 3})
    assert record.headers == {}
