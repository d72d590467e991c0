"""``Stem(durable_enqueue_replicas=n)``: enqueue returns once n replicas hold the jobs.

Real servers: a master with one replica (``REPLICAOF``), a master without any, and a
Redis Cluster whose masters each have a replica.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stem import EnqueueNotReplicated, Stem
from stem.embedded import EmbeddedRedis
from tests.cluster import LocalCluster
from tests.worker.test_cluster import queues_on_every_master


@pytest.fixture
def master_and_replica(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    with (
        EmbeddedRedis(tmp_path / "master", appendonly=False) as master,
        EmbeddedRedis(tmp_path / "replica", appendonly=False) as replica,
    ):
        client = redis.Redis(port=replica.port)
        client.replicaof("127.0.0.1", master.port)
        deadline = time.monotonic() + 20
        while client.info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline, "the replica did not sync within 20 s"
            time.sleep(0.02)
        yield master, replica


def test_a_durable_enqueue_returns_once_the_replica_holds_the_job(
    master_and_replica: tuple[EmbeddedRedis, EmbeddedRedis], namespace: str
) -> None:
    master, replica = master_and_replica
    app = Stem(master.url, namespace=namespace, durable_enqueue_replicas=1)
    try:
        handles = [app.enqueue("t", [i]) for i in range(20)]
        handles += app.enqueue_many("t", [[i] for i in range(1200)])  # three chunks
        on_replica = redis.Redis(port=replica.port)
        keys = app.broker.keys.queue("default")
        # No waiting here: WAIT already confirmed that the replica applied each write.
        assert all(on_replica.exists(keys.job(h.id)) for h in handles)
    finally:
        app.close()


def test_a_durable_enqueue_without_a_replica_says_the_jobs_were_written_but_not_confirmed(
    redis_url: str, namespace: str
) -> None:
    app = Stem(
        redis_url,
        namespace=namespace,
        durable_enqueue_replicas=1,
        durable_enqueue_timeout_s=0.05,
    )
    try:
        with pytest.raises(EnqueueNotReplicated, match="only 0 of 1 replica") as refused:
            app.enqueue("t", job_id="j-1")
        assert (refused.value.acknowledged, refused.value.wanted) == (0, 1)
        assert app.broker.job("default", "j-1") is not None  # written on the master
    finally:
        app.close()


def test_a_durable_enqueue_on_a_cluster_waits_for_each_masters_replica(
    tmp_path: Path, namespace: str
) -> None:
    with LocalCluster(tmp_path / "cluster", masters=3, replicas=1) as cluster:
        queues = queues_on_every_master(cluster)
        app = Stem(cluster.url, namespace=namespace, durable_enqueue_replicas=1)
        try:
            for q in queues:
                handles = app.enqueue_many("t", [[i] for i in range(600)], queue=q)
                master = cluster.master_of(cluster.keyslot(f"{{{q}}}"))
                replica_port = int(master.client().info("replication")["slave0"]["port"])
                replica = redis.Redis(port=replica_port)
                keys = app.broker.keys.queue(q)
                replica.execute_command("READONLY")  # type: ignore[no-untyped-call]
                assert all(replica.exists(keys.job(h.id)) for h in handles)
        finally:
            app.close()
