"""enqueue_many passes every job through the enqueue middleware, like enqueue does."""

from __future__ import annotations

import pytest

from stem import Middleware, Stem
from stem.envelope import decode
from stem.errors import ConfigError
from stem.middleware import OutgoingJob


class _RouteOdd(Middleware):
    """Sends jobs with an odd first argument to queue "odd" and tags every job."""

    def __init__(self) -> None:
        self.after: list[tuple[str, str, bool]] = []

    def before_enqueue(self, job: OutgoingJob) -> None:
        if job.args[0] % 2:
            job.queue = "odd"
        job.headers["tag"] = f"n{job.args[0]}"

    def after_enqueue(self, job: OutgoingJob, created: bool) -> None:
        self.after.append((job.job_id, job.queue, created))


def test_enqueue_many_writes_each_job_to_the_queue_its_middleware_routed_it_to(app: Stem) -> None:
    route = _RouteOdd()
    app.middleware.append(route)

    handles = app.enqueue_many("t.add", [(n,) for n in range(6)])

    assert [h.queue for h in handles] == ["default", "odd"] * 3
    for n, handle in enumerate(handles):
        record = app.broker.job(handle.queue, handle.id)
        assert record is not None
        env = decode(record.envelope)
        assert (env.args, env.queue, env.headers) == ([n], handle.queue, {"tag": f"n{n}"})


def test_enqueue_many_calls_after_enqueue_once_for_every_job(app: Stem) -> None:
    route = _RouteOdd()
    app.middleware.append(route)

    first = app.enqueue_many("t.add", [(n,) for n in range(5)], idempotency_key="batch")
    again = app.enqueue_many("t.add", [(n,) for n in range(5)], idempotency_key="batch")

    assert sorted(route.after[:5]) == sorted((h.id, h.queue, True) for h in first)
    # A repeat sees the job it would have written, and created=False (as enqueue does).
    assert sorted((q, c) for _, q, c in route.after[5:]) == sorted((h.queue, False) for h in first)
    assert [(h.id, h.queue) for h in again] == [(h.id, h.queue) for h in first]


class _BadRoute(Middleware):
    def before_enqueue(self, job: OutgoingJob) -> None:
        if job.args[0] == 3:
            job.queue = "not a queue"


def test_a_middleware_that_routes_one_job_to_a_bad_queue_refuses_the_batch_unwritten(
    app: Stem,
) -> None:
    app.middleware.append(_BadRoute())

    with pytest.raises(ConfigError, match="invalid queue name 'not a queue'"):
        app.enqueue_many("t.add", [(n,) for n in range(5)])

    assert app.broker.queues() == []
