"""Values stem did not write cost only their own job: never an actor, never a batch-mate.

Each test places a value in stem's keys the way an operator's typo, another program or
a half-applied migration would, then runs real ``stem worker`` / ``stem reclaim``
processes against the real Redis and checks that every other job completes, the odd one
is in the dead-letter queue with a reason, and the actors are still running.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from stem import JobState, Stem
from stem.broker.keys import GROUP, Keys
from tests.apps import jobs
from tests.worker.conftest import APP_SPEC, start_worker, wait_until
from tests.worker.test_guarantees import Procs, reclaimer

Q = "default"


def raw_client(url: str) -> Any:
    """A plain client outside stem (redis-py's replies are untyped)."""
    return redis.Redis.from_url(url)


def dead_reasons(app: Stem) -> dict[str, str]:
    return {e.job_id: e.reason for e in app.broker.dead_entries(Q, count=1000)}


def alive(*procs: subprocess.Popen[bytes]) -> bool:
    return all(p.poll() is None for p in procs)


def test_a_delayed_score_in_exponent_form_keeps_workers_and_the_reclaimer_running(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    far = jobs.add.enqueue(1, 1)  # made delayed below, far beyond anything stem writes
    r = raw_client(redis_url)
    qk = Keys(namespace).queue(Q)
    r.hset(qk.job(far.id), mapping={"state": "scheduled", "eta_ms": "1.79e+21"})
    r.zadd(qk.delayed, {far.id: 1.79e21})
    handles = jobs.add.enqueue_many([(i, 1) for i in range(100)])
    worker = start_worker(redis_url, namespace, repo_root, name="w-far")
    reclaim = reclaimer(redis_url, namespace, repo_root)
    procs += [worker, reclaim]
    for i, h in enumerate(handles):
        assert h.result(timeout_s=60) == i + 1
    assert alive(worker, reclaim)
    assert r.zscore(qk.delayed, far.id) == 1.79e21  # still waiting, not lost


def test_a_garbled_delivery_count_dead_letters_that_job_and_delivers_its_batch_mates(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    handles = jobs.add.enqueue_many([(i, 0) for i in range(5)])
    bad = handles[2]
    raw_client(redis_url).hset(Keys(namespace).queue(Q).job(bad.id), "deliveries", "many")
    worker = start_worker(redis_url, namespace, repo_root, "--burst", name="w-garbled")
    procs.append(worker)
    assert worker.wait(timeout=60) == 0
    assert [h.status() for h in handles] == [JobState.SUCCEEDED] * 2 + [JobState.DEAD] + [
        JobState.SUCCEEDED
    ] * 2
    assert dead_reasons(japp) == {bad.id: "corrupt-record"}


def test_a_stream_entry_that_is_not_utf8_is_dead_lettered_and_the_worker_stays_up(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    before = jobs.add.enqueue(1, 2)
    r = raw_client(redis_url)
    stream = Keys(namespace).queue(Q).stream(0)
    r.xadd(stream, {b"id": b"\xff\xfe-not-utf8", b"\xc3\x28": b"\xa0\xa1"})
    r.xadd(stream, {b"garbage": b"\xff"})
    after = jobs.add.enqueue(3, 4)
    worker = start_worker(redis_url, namespace, repo_root, "--burst", name="w-utf8")
    procs.append(worker)
    assert worker.wait(timeout=60) == 0
    assert (before.result(timeout_s=1), after.result(timeout_s=1)) == (3, 7)
    reasons = [e.reason for e in japp.broker.dead_entries(Q)]
    assert reasons == ["undecodable", "undecodable"]


def test_a_restarted_worker_dead_letters_a_non_utf8_entry_it_held_instead_of_dying(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    r = raw_client(redis_url)
    qk = Keys(namespace).queue(Q)
    good = jobs.add.enqueue(2, 2)  # creates the stream and its group
    r.xadd(qk.stream(0), {b"id": b"\xff\xfe"})
    # A previous run of worker "w-held" took both entries, then died.
    r.xreadgroup(GROUP, "w-held", {qk.stream(0): ">"}, count=10)
    worker = start_worker(redis_url, namespace, repo_root, "--burst", name="w-held")
    procs.append(worker)
    assert worker.wait(timeout=60) == 0
    assert good.result(timeout_s=1) == 4
    assert [e.reason for e in japp.broker.dead_entries(Q)] == ["undecodable"]


def test_a_worker_whose_redis_user_may_not_run_scripts_exits_3_with_one_line(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    user = f"noscripts-{namespace}"
    r = raw_client(redis_url)
    r.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-evalsha", "-eval")
    try:
        limited = redis_url.replace("redis://", f"redis://{user}:pw@")
        jobs.add.enqueue(1, 1)
        worker = subprocess.Popen(
            [*_stem(limited, namespace), "worker", "--name", "w-noperm"],
            cwd=repo_root,
            stderr=subprocess.PIPE,
            env=_env(repo_root),
            start_new_session=True,
        )
        reclaim = subprocess.Popen(
            [*_stem(limited, namespace), "reclaim"],
            cwd=repo_root,
            stderr=subprocess.PIPE,
            env=_env(repo_root),
            start_new_session=True,
        )
        procs += [worker, reclaim]
        outcomes: list[tuple[int, str]] = []
        for proc in (worker, reclaim):
            _, raw_err = proc.communicate(timeout=60)  # also closes the stderr pipe
            outcomes.append((proc.returncode, raw_err.decode()))
        for code, text in outcomes:
            errors = [line for line in text.splitlines() if "error" in line.lower()]
            assert code == 3, text
            assert len(errors) == 1 and "NOPERM" in errors[0], text
            assert "Traceback" not in text
    finally:
        r.execute_command("ACL", "DELUSER", user)


def test_a_lost_connection_is_retried_not_fatal(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    worker = start_worker(redis_url, namespace, repo_root, name="w-kicked")
    procs.append(worker)
    wait_until(japp.broker.workers, what="the worker heartbeat")
    r = raw_client(redis_url)
    kicked = time.monotonic()
    while time.monotonic() - kicked < 1.0:  # kill its connections a few times over
        r.client_kill_filter(_type="normal", skipme=True)
    assert jobs.add.enqueue(5, 5).result(timeout_s=60) == 10
    assert alive(worker)


def _stem(url: str, namespace: str) -> list[str]:
    import sys

    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", namespace]
    return [*argv, "--app", APP_SPEC]


def _env(root: Path) -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(root)}
