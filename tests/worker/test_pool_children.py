"""Process-pool children never outlive their worker, even one killed while they start."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from stem import JobState, Stem
from tests.apps import jobs
from tests.processes import alive
from tests.worker.conftest import APP_SPEC, wait_until

# Loaded by every Python started with this folder on its path; it stalls only pool
# children, at interpreter start, before any stem code runs: the window in which a
# SIGKILLed worker used to leave them behind (they armed their parent-death signal later).
SLOW_START = """\
import sys, time
if "stem.worker.child" in sys.orig_argv:
    time.sleep(60)
"""


def pool_children(worker_pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(worker_pid).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            if "stem.worker.child" in child.cmdline():
                found.append(child)
    return found


def pool_worker(
    redis_url: str, namespace: str, root: Path, tmp_path: Path, sitecustomize: str, *extra: str
) -> subprocess.Popen[bytes]:
    """A real ``stem worker --pool processes`` (its own session) whose processes, pool
    children included, run ``sitecustomize`` first (to slow their start down)."""
    (tmp_path / "sitecustomize.py").write_text(sitecustomize)
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", APP_SPEC, "worker", "--pool", "processes", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    return subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)


def test_pool_children_still_starting_die_with_a_sigkilled_worker(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    strays: list[psutil.Process],
) -> None:
    worker = pool_worker(redis_url, namespace, repo_root, tmp_path, SLOW_START, "-c", "3")
    try:
        for i in range(3):
            jobs.sync_add.enqueue(i, i)
        wait_until(lambda: len(pool_children(worker.pid)) == 3, what="three pool children")
        strays.extend(pool_children(worker.pid))
        worker.kill()  # the worker only: its children are still in their slow start
        worker.wait()
        wait_until(lambda: not alive(strays), timeout_s=10, what="the pool children to die")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_an_embedded_redis_dies_with_its_sigkilled_owner(
    repo_root: Path, tmp_path: Path, strays: list[psutil.Process]
) -> None:
    owner_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from stem.embedded import EmbeddedRedis\n"
        "server = EmbeddedRedis(Path(sys.argv[1]), appendonly=False).start()\n"
        "print(server._proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_code, str(tmp_path / "redis")],
        cwd=repo_root, env=env, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        assert owner.stdout is not None
        server = psutil.Process(int(owner.stdout.readline()))
        strays.append(server)
        owner.kill()
        owner.wait()
        wait_until(lambda: not alive([server]), timeout_s=10, what="redis-server to die")
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()


def test_a_job_revoked_while_its_pool_child_starts_leaves_no_child_behind(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    strays: list[psutil.Process],
) -> None:
    worker = pool_worker(redis_url, namespace, repo_root, tmp_path, SLOW_START)
    try:
        job = jobs.sync_add.enqueue(1, 2)
        wait_until(lambda: len(pool_children(worker.pid)) == 1, what="a pool child starting")
        strays.extend(pool_children(worker.pid))
        wait_until(lambda: job.status() is JobState.STARTED, what="the job to be started")

        japp.broker.revoke("default", job.id, terminate=True)

        wait_until(lambda: not alive(strays), what="the starting child to die")
        wait_until(lambda: japp.broker.queue_stats("default").pending == 0, what="the ack")
        assert job.status() is JobState.REVOKED
        assert worker.poll() is None  # the worker goes on
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


# Pool children take a second and a half to start (a slow app import, a busy host).
SLOW_IMPORT = """\
import sys, time
if "stem.worker.child" in sys.orig_argv:
    time.sleep(1.5)
"""


def test_a_pool_child_still_starting_survives_sigterm_to_the_group_and_runs_its_job(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    strays: list[psutil.Process],
) -> None:
    worker = pool_worker(redis_url, namespace, repo_root, tmp_path, SLOW_IMPORT, "-c", "1")
    try:
        job = jobs.sync_add.enqueue(1, 2)
        wait_until(lambda: len(pool_children(worker.pid)) == 1, what="a pool child starting")
        strays.extend(pool_children(worker.pid))

        os.killpg(worker.pid, signal.SIGTERM)  # as stem supervise and Heroku do

        assert worker.wait(timeout=30) == 0
        assert job.result(timeout_s=1) == 3
        info = job.info()
        assert info is not None and (info.attempt, info.deliveries) == (0, 1)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
