"""stem on a real 3-master Redis Cluster: queues on different masters, real actor processes.

The session's cluster (``tests/conftest.py``) is started by the suite; queue names are
chosen by ``CLUSTER KEYSLOT`` so that each queue's slot is served by a different master.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem import Stem
from stem.broker import QueueStats, RedisBroker
from stem.errors import BrokerRefused, BrokerUnavailable
from tests.apps import jobs
from tests.beat.running import start_beat
from tests.cluster import LocalCluster
from tests.worker.conftest import lines, start_worker, wait_until

Procs = list[subprocess.Popen[bytes]]


def queues_on_every_master(cluster: LocalCluster) -> list[str]:
    """One queue name per master, each in a slot that master serves."""
    by_master: dict[int, str] = {}
    masters = len(cluster.masters())
    for i in range(1000):
        name = f"q{i}"
        master = cluster.master_of(cluster.keyslot(f"{{{name}}}"))
        by_master.setdefault(master.port, name)
        if len(by_master) == masters:
            return sorted(by_master.values())
    raise AssertionError("no queue names cover every master")


@pytest.fixture
def capp(cluster: LocalCluster, namespace: str) -> Iterator[Stem]:
    """The worker tests' app on the cluster, in this test's namespace."""
    jobs.app.connect(cluster.url, namespace=namespace)
    yield jobs.app
    jobs.app.close()


def _reclaimer(url: str, namespace: str, root: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", namespace]
    argv += ["--app", "tests.apps.jobs:app", "reclaim"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)


def _idle(stats: QueueStats) -> bool:
    return (stats.ready, stats.pending, stats.delayed) == (0, 0, 0)


def _runs(ledger: Path) -> Counter[tuple[str, str]]:
    got = lines(ledger)
    return Counter(zip(got[::2], got[1::2], strict=True))


def test_two_workers_serving_three_queues_on_three_masters_run_every_job_once(
    cluster: LocalCluster,
    capp: Stem,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    queues = queues_on_every_master(cluster)
    assert len({cluster.master_of(cluster.keyslot(f"{{{q}}}")).port for q in queues}) == 3
    ledger = tmp_path / "ledger"
    config = tmp_path / "stem.toml"
    config.write_text(
        "".join(
            f'[[schedule]]\nname = "tick-{q}"\ntask = "tests.apps.jobs.ledger"\n'
            f'every_s = 1\nqueue = "{q}"\nargs = ["{ledger}"]\n\n'
            for q in queues
        )
    )
    # A backlog first, then workers, beat and reclaimer, then jobs that arrive while the
    # workers wait: the idle wait must wake for every queue, whatever its master.
    expected = {
        (q, h.id)
        for q in queues
        for h in capp.enqueue_many("tests.apps.jobs.ledger", [(str(ledger),)] * 100, queue=q)
    }
    spec = ",".join(f"{q}:1" for q in queues)
    url = cluster.url
    for name in ("w1", "w2"):
        procs.append(start_worker(url, namespace, repo_root, "-Q", spec, "-c", "8", name=name))
    procs.append(_reclaimer(url, namespace, repo_root))
    procs.append(
        start_beat(url, namespace, repo_root, tmp_path / "beat.log", config=config, name="b")
    )
    wait_until(lambda: expected <= set(_runs(ledger)), 60, "the backlog to be run")
    assert [p.args for p in procs if p.poll() is not None] == []
    for q in queues * 10:
        expected.add((q, jobs.ledger.enqueue_with(queue=q)(str(ledger)).id))
    wait_until(lambda: expected <= set(_runs(ledger)), 60, "the late jobs to be run")
    wait_until(
        lambda: {q for q, j in _runs(ledger) if j.startswith("beat:")} == set(queues),
        30,
        "a beat tick on every queue",
    )

    # Beat first: a tick it fires while the workers stop would stay ready. Then the
    # workers, once they have run what beat left.
    beat = procs[-1]
    os.killpg(beat.pid, signal.SIGTERM)
    assert beat.wait(timeout=30) == 0
    wait_until(
        lambda: all(_settled(capp.broker.queue_stats(q)) for q in queues), 30, "the last ticks"
    )
    for p in procs[:-1]:
        os.killpg(p.pid, signal.SIGTERM)
    assert [p.wait(timeout=30) for p in procs] == [0, 0, 0, 0]
    runs = _runs(ledger)
    assert [key for key, n in runs.items() if n > 1] == []  # every job once
    assert expected <= set(runs)
    beat_runs = {(q, j) for q, j in runs if j.startswith("beat:")}
    assert set(runs) - expected == beat_runs
    for q in queues:
        stats = capp.broker.queue_stats(q)
        assert (stats.ready, stats.pending, stats.dead) == (0, 0, 0)
    for master in cluster.masters():
        assert master.client().dbsize() > 0  # the work really spread over the masters


def test_a_plain_redis_url_at_a_cluster_node_is_refused_with_the_url_to_use(
    cluster: LocalCluster, namespace: str
) -> None:
    queues = queues_on_every_master(cluster)
    broker = RedisBroker(f"redis://127.0.0.1:{cluster.nodes[0].port}/0", namespace=namespace)
    try:
        with pytest.raises(BrokerRefused, match=r"redis\+cluster://") as refused:
            for q in queues:  # at least one queue's slot is on another node
                broker.queue_stats(q)
                broker.fetch(q, "c", 1)
        assert "refused a command" not in str(refused.value)
    finally:
        broker.close()


def test_wait_ready_on_a_cluster_wakes_for_an_entry_on_any_master(
    cluster: LocalCluster, capp: Stem
) -> None:
    queues = queues_on_every_master(cluster)
    broker = capp.broker
    for q in queues:
        assert broker.fetch(q, "c", 1) == []
    assert broker.wait_ready(queues, 30) is False
    jobs.noop.enqueue_with(queue=queues[-1])()
    assert broker.wait_ready(queues, 30_000) is True


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[LocalCluster]:
    """A private cluster of 3 masters with one replica each (this test fails one over)."""
    with LocalCluster(tmp_path / "cluster", masters=3, replicas=1) as running:
        yield running


def test_a_failover_in_the_middle_of_a_drain_loses_no_job_and_the_actors_carry_on(
    replicated: LocalCluster,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    cluster = replicated
    queues = queues_on_every_master(cluster)
    jobs.app.connect(cluster.url, namespace=namespace)
    try:
        ledger = tmp_path / "ledger"
        calls = [(str(ledger), 0.02)] * 150
        expected = {
            (q, h.id)
            for q in queues
            for h in jobs.app.enqueue_many("tests.apps.jobs.ledger", calls, queue=q)
        }
        spec = ",".join(f"{q}:1" for q in queues)
        for name in ("w1", "w2"):
            procs.append(
                start_worker(cluster.url, namespace, repo_root, "-Q", spec, "-c", "4", name=name)
            )
        procs.append(_reclaimer(cluster.url, namespace, repo_root))
        wait_until(lambda: len(_runs(ledger)) >= 100, 60, "the drain to be under way")

        old = cluster.master_of(cluster.keyslot(f"{{{queues[0]}}}"))
        replica_port = int(old.client().info("replication")["slave0"]["port"])
        replica = next(n for n in cluster.nodes if n.port == replica_port)
        assert replica.client().execute_command("CLUSTER", "FAILOVER") == "OK"  # type: ignore[no-untyped-call]
        wait_until(
            lambda: cluster.master_of(cluster.keyslot(f"{{{queues[0]}}}")) is replica,
            20,
            "the replica to take over",
        )
        done_at_failover = len(_runs(ledger))

        wait_until(lambda: expected <= set(_runs(ledger)), 90, "every job to run")
        # A lease shorter than the switch (this app's is 1 s) expires while the old
        # master pauses writes: the reclaimer hands such jobs back, and the new entry of a
        # job that did finish is skipped and counted by the next fetch, not run again.
        broker = jobs.app.broker
        wait_until(
            lambda: all(_idle(broker.queue_stats(q)) for q in queues), 30, "the queues to empty"
        )
        assert [p.args for p in procs if p.poll() is not None] == []
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        assert [p.wait(timeout=30) for p in procs] == [0, 0, 0]
        runs = _runs(ledger)
        duplicates = sum(n - 1 for n in runs.values())
        skipped = sum(
            int(broker.client.hget(broker.keys.queue(q).stats, "duplicates") or 0) for q in queues
        )
        print(
            f"failover: {done_at_failover} runs before, {duplicates} run twice, {skipped} skipped"
        )
        # A graceful failover waits for the replica to catch up: nothing is lost. A job
        # runs twice only if its lease expired while it ran (bounded by what the workers
        # held: 2 workers x (concurrency + prefetch)).
        assert expected == set(runs)
        assert duplicates <= 2 * 8, (duplicates, done_at_failover)
        assert all(broker.queue_stats(q).dead == 0 for q in queues)
        # Leases of jobs on the masters that did not fail over were renewed throughout.
        reclaimed = [broker.client.hget(broker.keys.queue(q).stats, "reclaimed") for q in queues]
        assert reclaimed[1:] == [None, None]
    finally:
        jobs.app.close()


def _enqueue_until_acknowledged(app: Stem, queue: str, key: str, ledger: Path) -> str:
    """Enqueue one ledger job, repeating with the same idempotency key until Redis (and a
    replica, ``durable_enqueue_replicas``) acknowledged it; return its job id."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return jobs.ledger.enqueue_with(queue=queue, idempotency_key=key)(str(ledger)).id
        except BrokerUnavailable:
            assert time.monotonic() < deadline, f"could not enqueue {key} for 60 s"
            time.sleep(0.05)  # the cluster is electing a new master


def test_a_killed_master_loses_no_durably_enqueued_job(
    replicated: LocalCluster,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
) -> None:
    cluster = replicated
    queues = queues_on_every_master(cluster)
    ledger = tmp_path / "ledger"
    app = jobs.app
    app.connect(cluster.url, namespace=namespace)
    app.durable_enqueue_replicas = 1
    try:
        spec = ",".join(f"{q}:1" for q in queues)
        for name in ("w1", "w2"):
            procs.append(
                start_worker(
                    cluster.url,
                    namespace,
                    repo_root,
                    "-Q",
                    spec,
                    "-c",
                    "4",
                    "--prefetch",
                    "4",
                    name=name,
                )
            )
        procs.append(_reclaimer(cluster.url, namespace, repo_root))
        # The master dies under running actors (one started during a failover is
        # test_a_worker_started_while_a_master_is_down_waits_and_then_serves_every_queue).
        wait_until(lambda: len(app.broker.workers()) == 2, 30, "both workers to beat")
        acknowledged: set[tuple[str, str]] = set()
        victim = cluster.master_of(cluster.keyslot(f"{{{queues[0]}}}"))
        for i in range(300):
            q = queues[i % 3]
            acknowledged.add((q, _enqueue_until_acknowledged(app, q, f"k{i}", ledger)))
            if i == 100:
                victim.stop()  # SIGKILL: no graceful hand-over to its replica
                slot = cluster.keyslot(f"{{{queues[0]}}}")
                promoted = lambda: cluster.master_of(slot) is not victim  # noqa: E731, B023
                wait_until(promoted, 30, "a promotion")
                # The promoted replica has no replica of its own, so durable enqueues to
                # it wait for one: the killed node restarts and rejoins as its replica.
                victim.start()
        try:
            wait_until(lambda: acknowledged <= set(_runs(ledger)), 90, "every acknowledged job")
        except AssertionError:
            missing = sorted(acknowledged - set(_runs(ledger)))
            records = [(q, j, app.broker.job(q, j)) for q, j in missing]
            stats = [app.broker.queue_stats(q) for q in queues]
            raise AssertionError(f"not run: {records}; queues: {stats}") from None
        assert [p.args for p in procs if p.poll() is not None] == []
        runs = _runs(ledger)
        twice = sum(n - 1 for n in runs.values())
        print(f"killed master: {len(acknowledged)} acknowledged, {twice} ran twice")
        # Jobs fetched or settled on the killed master but not yet replicated run again:
        # at most what the workers held on that master (a fixed prefetch makes that 2 * 8).
        assert twice <= 2 * 8
    finally:
        app.durable_enqueue_replicas = 0
        app.close()


def _logged_worker(
    url: str, namespace: str, root: Path, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``start_worker``, with its log lines in ``log`` (to see that it waits)."""
    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", namespace]
    argv += ["--app", "tests.apps.jobs:app", "worker", *extra]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.mark.parametrize("outage", ["failover", "master and replica down"])
def test_a_worker_started_while_a_master_is_down_waits_and_then_serves_every_queue(
    replicated: LocalCluster,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    procs: Procs,
    outage: str,
) -> None:
    cluster = replicated
    queues = queues_on_every_master(cluster)
    slot = cluster.keyslot(f"{{{queues[0]}}}")
    victim = cluster.master_of(slot)
    replica_port = int(victim.client().info("replication")["slave0"]["port"])
    replica = next(n for n in cluster.nodes if n.port == replica_port)
    victim.stop()  # SIGKILL: the cluster notices after its node timeout (2 s)
    if outage != "failover":
        replica.stop()  # nobody can take over: CLUSTERDOWN until the master is back
    log = tmp_path / "worker.log"
    spec = ",".join(f"{q}:1" for q in queues)
    worker = _logged_worker(cluster.url, namespace, repo_root, log, "-Q", spec, "-c", "2")
    procs.append(worker)
    if outage == "failover":
        wait_until(lambda: cluster.master_of(slot) is replica, 30, "the replica to take over")
    else:
        # It retries, whether at start-up or in its loops, until the master is back.
        def retrying() -> bool:
            text = log.read_text()
            return worker.poll() is not None or "retrying" in text or "waiting for Redis" in text

        wait_until(retrying, 30, "the worker to retry")
        assert worker.poll() is None, log.read_text()
        victim.start()  # the master is back with its slots
    wait_until(lambda: worker.poll() is not None or _cluster_ok(cluster), 30, "the cluster")
    assert worker.poll() is None, log.read_text()

    ledger = tmp_path / "ledger"
    jobs.app.connect(cluster.url, namespace=namespace)
    try:
        expected = {(q, jobs.ledger.enqueue_with(queue=q)(str(ledger)).id) for q in queues}
        ran = lambda: worker.poll() is not None or expected <= set(_runs(ledger))  # noqa: E731
        wait_until(ran, 60, "the worker to run a job of every queue")
        assert worker.poll() is None, log.read_text()
        assert expected <= set(_runs(ledger))
        assert "refused a command" not in log.read_text()
    finally:
        jobs.app.close()


def _cluster_ok(cluster: LocalCluster) -> bool:
    live = [n for n in cluster.nodes if n.proc is not None]
    return all(n.client().cluster("INFO")["cluster_state"] == "ok" for n in live)


def _settled(stats: QueueStats) -> bool:
    return stats.ready + stats.pending + stats.delayed == 0
