"""The Prometheus exposition: computed from Redis, parsed by prometheus_client's parser."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from stem import Stem
from stem.observe.prometheus import exposition, serve_metrics
from stem.worker import Worker, WorkerOptions, serve_worker
from tests.apps import observed

FAMILIES = {
    "stem_up",
    "stem_queue_jobs",
    "stem_queue_oldest_ready_age_seconds",
    "stem_workers_alive",
    "stem_actors_alive",
    "stem_worker_jobs_held",
    "stem_worker_jobs_running",
    "stem_worker_concurrency",
    "stem_worker_prefetch",
    "stem_jobs_processed",
    "stem_jobs_failed",
    "stem_jobs_retried",
    "stem_queue_paused",
    "stem_queue_lease_expired_jobs",
    "stem_jobs_reclaimed",
    "stem_job_run_duration_seconds",
    "stem_job_wait_duration_seconds",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def oapp(redis_url: str, namespace: str) -> Iterator[Stem]:
    observed.app.connect(redis_url, namespace=namespace)
    yield observed.app
    observed.app.close()


async def test_after_100_jobs_the_exposition_holds_every_family_with_the_right_values(
    oapp: Stem,
) -> None:
    oapp.enqueue_many(observed.quiet, [() for _ in range(100)])
    oapp.enqueue(observed.fails)
    oapp.enqueue(observed.quiet, delay_s=3600)
    options = WorkerOptions(concurrency=4, prefetch=4, name="w1")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            worker: Worker = await nursery.start(serve_worker, oapp, options)

            def heartbeat_counts() -> object:
                records = oapp.broker.workers()  # none until the first heartbeat lands
                return records[0].get("by_queue", {}).get("default") if records else None

            want = {"processed": 100, "failed": 1, "retried": 1}
            while heartbeat_counts() != want:
                await trio.sleep(0.05)  # polling the condition, not timing it
            text = await trio.to_thread.run_sync(exposition, oapp.broker)
            worker.request_stop()

    got = samples(text)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert names == FAMILIES
    q, w = ("queue", "default"), ("worker", "w1")
    assert got[("stem_up", ())] == 1
    assert got[("stem_jobs_processed_total", (q, w))] == 100
    assert got[("stem_jobs_failed_total", (q, w))] == 1
    assert got[("stem_jobs_retried_total", (q, w))] == 1
    assert got[("stem_queue_jobs", (q, ("state", "delayed")))] == 1
    assert got[("stem_queue_jobs", (q, ("state", "dead")))] == 1
    assert got[("stem_queue_jobs", (q, ("state", "ready")))] == 0
    assert got[("stem_workers_alive", ())] == 1
    assert got[("stem_actors_alive", (("actor", "worker"),))] == 1
    assert got[("stem_worker_concurrency", (w,))] == 4
    assert got[("stem_worker_prefetch", (w,))] == 4
    assert got[("stem_queue_oldest_ready_age_seconds", (q,))] == 0
    assert got[("stem_queue_paused", (q,))] == 0
    assert got[("stem_queue_lease_expired_jobs", (q,))] == 0
    assert got[("stem_jobs_reclaimed_total", (q,))] == 0
    quiet, fails = ("task", "tests.apps.observed.quiet"), ("task", "tests.apps.observed.fails")
    for family in ("stem_job_run_duration_seconds", "stem_job_wait_duration_seconds"):
        # One observation per run: 100 quiet runs, two of the failing job (retried once).
        assert got[(f"{family}_count", (q, quiet, w))] == 100
        assert got[(f"{family}_bucket", (("le", "+Inf"), q, quiet, w))] == 100
        assert got[(f"{family}_count", (q, fails, w))] == 2
        assert got[(f"{family}_sum", (q, quiet, w))] >= 0
    # A no-op task runs well under 5 minutes, so its runs sit in the finite buckets.
    assert got[("stem_job_run_duration_seconds_bucket", (("le", "300.0"), q, quiet, w))] == 100


async def test_a_dead_workers_expired_lease_then_its_reclaim_show_in_the_queue_families(
    oapp: Stem,
) -> None:
    oapp.enqueue(observed.quiet)
    held = oapp.broker.fetch("default", "dead-worker", 1)  # fetched, then never renewed
    assert len(held) == 1
    oapp.broker.pause("default")

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return samples(exposition(oapp.broker, lease_s=0.05))

    q = (("queue", "default"),)
    with trio.fail_after(30):
        while scrape()[("stem_queue_lease_expired_jobs", q)] != 1:
            await trio.sleep(0.02)  # polling until the lease has run out
    got = scrape()
    assert got[("stem_queue_paused", q)] == 1
    assert got[("stem_jobs_reclaimed_total", q)] == 0
    stats = oapp.broker.reclaim("default", "reclaimer", min_idle_ms=50, max_deliveries=5)
    assert stats.requeued == 1
    got = scrape()
    assert got[("stem_queue_lease_expired_jobs", q)] == 0
    assert got[("stem_jobs_reclaimed_total", q)] == 1


def test_the_oldest_ready_age_and_the_endpoint_serve_what_redis_holds(oapp: Stem) -> None:
    assert oapp.broker.oldest_ready_age_ms("default") is None
    oapp.enqueue(observed.quiet)
    age_ms = oapp.broker.oldest_ready_age_ms("default")
    assert age_ms is not None and 0 <= age_ms < 60_000
    server, _ = serve_metrics(oapp.broker, 0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    got = samples(text)
    assert got[("stem_queue_jobs", (("queue", "default"), ("state", "ready")))] == 1
    assert got[("stem_queue_oldest_ready_age_seconds", (("queue", "default"),))] >= 0
    assert got[("stem_workers_alive", ())] == 0


@pytest.mark.promtool
async def test_the_exposition_passes_promtool_check_metrics(oapp: Stem) -> None:
    """Opt-in (``-m promtool``): needs promtool (``apt-get install prometheus``).

    A worker has run jobs (histograms and counters have samples) and still heartbeats
    while the exposition is taken; one job waits (queue gauges are non-zero)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: apt-get install prometheus (Debian)"
    oapp.enqueue_many(observed.quiet, [() for _ in range(3)])
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            worker: Worker = await nursery.start(serve_worker, oapp, WorkerOptions(name="p1"))
            while "stem_job_run_duration_seconds_bucket" not in exposition(oapp.broker):
                await trio.sleep(0.05)  # polling until a heartbeat carries the histograms
            oapp.broker.pause("default")
            oapp.enqueue(observed.quiet)
            text = exposition(oapp.broker)
            worker.request_stop()
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
