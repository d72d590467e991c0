"""The reclaimer says which job it took back, of which task and queue, and from whom."""

from __future__ import annotations

import logging

import pytest

from stem import Stem
from stem.reclaimer import Reclaimer
from tests.worker.conftest import wait_until


def test_a_reclaimed_job_gets_a_line_with_its_id_task_queue_and_previous_consumer(
    app: Stem, caplog: pytest.LogCaptureFixture
) -> None:
    app.lease_s = 0.05
    job = app.enqueue("tests.apps.observed.quiet")
    [held] = app.broker.fetch("default", "host1/worker.7", 1)  # then its worker "dies"
    reclaimer = Reclaimer(app, ["default"])

    def reclaimed() -> bool:
        reclaimer.reclaim_round()  # takes it back once its lease has run out
        return any(getattr(r, "job_id", None) == job.id for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="stem.reclaimer"):
        wait_until(reclaimed, what="the reclaim line")
    [line] = [r for r in caplog.records if getattr(r, "job_id", None) == job.id]
    assert line.getMessage() == "reclaimed from host1/worker.7 (lease expired): handed back"
    assert (line.task, line.queue) == ("tests.apps.observed.quiet", "default")  # type: ignore[attr-defined]
    assert held.job_id == job.id
