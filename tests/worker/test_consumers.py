"""Consumer-group housekeeping: stopped actors leave no consumer behind, and the
reclaimer prunes idle ones that hold nothing (never one holding entries)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from stem import Stem
from stem.reclaimer import Reclaimer
from tests.apps import jobs
from tests.worker.conftest import start_worker, wait_until
from tests.worker.test_guarantees import reclaimer

Procs = list[subprocess.Popen[bytes]]


def consumers(app: Stem) -> dict[str, int]:
    """Consumer name -> pending count, over every ready stream of the default queue."""
    out: dict[str, int] = {}
    client = app.broker.client
    for stream in app.broker.keys.queue("default").streams():
        if client.exists(stream):
            for c in client.xinfo_consumers(stream, "workers"):
                out[c["name"].decode()] = out.get(c["name"].decode(), 0) + int(c["pending"])
    return out


def test_a_worker_stopped_with_sigterm_leaves_no_consumer_behind(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    handle = jobs.add.enqueue(1, 2)
    worker = start_worker(redis_url, namespace, repo_root, name="tidy")
    procs.append(worker)
    assert handle.result(timeout_s=30) == 3
    assert any(name.endswith("tidy") for name in consumers(japp))
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert consumers(japp) == {}


def test_a_stopped_reclaimer_leaves_no_consumer_behind(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    jobs.add.enqueue(1, 2)
    japp.broker.fetch("default", "dead-worker", 1)  # expires after the 1 s lease

    def reclaimers() -> list[str]:
        return [n for n in consumers(japp) if n.startswith("reclaimer/")]

    proc = reclaimer(redis_url, namespace, repo_root)
    procs.append(proc)
    wait_until(reclaimers, what="the reclaimer to claim the expired job")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert reclaimers() == []


def test_a_reclaimer_round_removes_idle_empty_consumers_but_never_one_holding_jobs(
    japp: Stem,
) -> None:
    jobs.add.enqueue_many([(i, i) for i in range(2)])
    broker = japp.broker
    broker.fetch("default", "crashed-holder", 1)  # a SIGKILLed worker's leftovers
    [done] = broker.fetch("default", "crashed-empty", 1)
    broker.release([done], undo_delivery=True)
    rounds = Reclaimer(japp, None)
    rounds.consumer_idle_s = 0.1
    time.sleep(0.2)  # both idle longer than the bound
    rounds.prune_round()
    assert consumers(japp) == {"crashed-holder": 1}
