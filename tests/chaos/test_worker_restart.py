"""A worker that loses Redis while it recovers its own jobs keeps going.

Found by the ``reset-peer`` scenario: a connection reset while a (re)started worker was
recovering what its previous run held stopped it with exit code 3, and a recovered job
that had already run lost its result.
"""

from __future__ import annotations

import time

import pytest

from chaos.stack import open_stack, wait_for
from chaos.stack.producer import TASK
from stem.states import JobState


@pytest.mark.chaos
def test_a_worker_whose_redis_drops_while_it_settles_a_recovered_job_retries(
    toxiproxy_url: str,
) -> None:
    with open_stack("recover", toxiproxy_url=toxiproxy_url) as stack:
        link = stack.proxy("redis")
        direct = stack.direct
        handle = direct.enqueue(TASK, (1.0,))
        # A previous run of worker "w" took the job, then died holding it.
        assert [d.job_id for d in direct.broker.fetch("default", "w", 10)] == [handle.id]
        worker = stack.worker(link, "w")
        wait_for(lambda: stack.ledger.runs() == [handle.id], 30.0, "the recovered job to run")
        link.disable()  # the settle, about 1 s from now, finds Redis gone
        time.sleep(2.0)  # the length of the outage, not a synchronisation
        link.enable()
        wait_for(lambda: handle.status() is JobState.SUCCEEDED, 30.0, "the settle to land")
        assert worker.alive(), worker.log()
        assert stack.ledger.runs() == [handle.id]
