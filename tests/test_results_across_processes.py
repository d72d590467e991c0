"""Foundation guarantees seen from outside: delays on time, results across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from stem import JobState, Stem
from stem.broker import Settlement
from stem.outcome import Verdict


def test_a_waiter_in_another_process_receives_a_result_settled_later(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    handle = app.enqueue("some.task", args=[1])
    code = (
        "import stem, sys; app = stem.Stem(sys.argv[1], namespace=sys.argv[2]);"
        "print(app.job(sys.argv[3]).result(timeout_s=60))"
    )
    waiter = subprocess.Popen(
        [sys.executable, "-c", code, redis_url, namespace, handle.id],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(repo_root)},
    )
    time.sleep(0.5)  # let the waiter block first (it would also see an earlier result)
    [d] = app.broker.fetch("default", "test", 1)
    app.broker.settle([Settlement(d, Verdict.COMPLETE, '{"answer": 42}')])
    out, _ = waiter.communicate(timeout=60)
    assert (waiter.returncode, out.decode().strip()) == (0, "{'answer': 42}")


def test_a_delayed_job_reaches_its_stream_after_its_eta(app: Stem) -> None:
    enqueued = time.monotonic()  # before the call: the ETA is computed inside it
    handle = app.enqueue("some.task", delay_s=0.3)
    assert handle.status() is JobState.SCHEDULED
    deadline = enqueued + 10
    while app.broker.promote_due("default")[0] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert time.monotonic() - enqueued >= 0.29
    assert handle.status() is JobState.QUEUED
