"""`stem supervise` end to end: real supervisor, workers, reclaimer and signals."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from stem import JobFailed, JobState, Stem
from stem.cli import main
from tests.apps import jobs
from tests.worker.conftest import lines, wait_until


class Stack:
    """A running `stem supervise` process and helpers to find its actors."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def actors(self, kind: str) -> list[psutil.Process]:
        found = []
        for p in psutil.Process(self.proc.pid).children(recursive=False):
            try:
                argv = p.cmdline()
            except psutil.NoSuchProcess:
                continue
            if kind in argv and "stem" in argv:
                found.append(p)
        return found

    def tree(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


@pytest.fixture
def supervise(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path
) -> Iterator[object]:
    started: list[Stack] = []

    def start(
        *args: str,
        redis: bool = True,
        app: str = "tests.apps.jobs:app",
        host: str | None = None,
        beat: bool = False,
    ) -> Stack:
        """``stem supervise *args``; with ``host``, as that machine: its own ``DYNO`` (the
        host part of its workers' names) and its own data dir."""
        argv = [sys.executable, "-m", "stem", "--namespace", namespace]
        if redis:
            argv += ["--redis-url", redis_url]
        argv += ["--app", app, "supervise", "--beat" if beat else "--no-beat"]
        data_dir = tmp_path / ("data" if host is None else f"data-{host}")
        argv += ["--data-dir", str(data_dir), *args]
        log = tmp_path / f"supervise{len(started)}.log"
        env = {**os.environ, "PYTHONPATH": str(repo_root)}
        if host is not None:
            env["DYNO"] = host
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=repo_root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack = Stack(proc, log)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        leftovers = [stack.proc.pid] + [p.pid for p in stack.tree()]
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stack.proc.wait()


def gone(procs: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)


def test_a_sigkilled_worker_is_restarted_and_its_jobs_complete_at_most_twice(
    supervise: object, japp: Stem, tmp_path: Path
) -> None:
    stack = supervise("--workers", "2", "--concurrency", "4")  # type: ignore[operator]
    wait_until(lambda: len(stack.actors("worker")) == 2, what="two workers")
    log = tmp_path / "runs.txt"
    handles = jobs.arecord.enqueue_many([(str(log), str(i), 1.0) for i in range(16)])
    wait_until(lambda: len(lines(log)) >= 4, what="jobs to start")
    victim = stack.actors("worker")[0]
    victim.send_signal(signal.SIGKILL)
    wait_until(
        lambda: (
            len(stack.actors("worker")) == 2
            and victim.pid not in [p.pid for p in stack.actors("worker")]
        ),
        what="the worker to be restarted",
    )
    for h in handles:
        assert h.result(timeout_s=60) is not None
    status = CliRunner().invoke(
        main, ["observe", "supervisor", "--data-dir", str(tmp_path / "data"), "--json"]
    )
    restarts = {
        c["name"] + str(c["replica"]): c["restarts"] for c in json.loads(status.output)["children"]
    }
    assert sum(v for k, v in restarts.items() if k.startswith("worker")) == 1
    runs = Counter(lines(log))
    assert set(runs) == {str(i) for i in range(16)}
    assert max(runs.values()) <= 2


def test_sigterm_stops_every_child_and_grandchild_within_the_stop_timeout(
    supervise: object, japp: Stem, tmp_path: Path
) -> None:
    stack = supervise("--workers", "1", "--stop-timeout-s", "3")  # type: ignore[operator]
    wait_until(lambda: len(stack.actors("worker")) == 1, what="a worker")
    log = tmp_path / "runs.txt"
    quick = jobs.record.enqueue(str(log), "sync", 0.5)  # starts a pool child (grandchild)
    slow = jobs.arecord.enqueue(str(log), "slow", 60.0)
    wait_until(lambda: set(lines(log)) == {"sync", "slow"}, what="both jobs to start")
    assert quick.result(timeout_s=30) == "sync"
    tree = stack.tree()
    assert any("stem.worker.child" in " ".join(p.cmdline()) for p in tree)
    sent = time.monotonic()
    os.kill(stack.proc.pid, signal.SIGTERM)
    assert stack.proc.wait(timeout=30) == 0
    wait_until(lambda: gone(tree), timeout_s=10, what="the whole tree to exit")
    assert time.monotonic() - sent <= 3 + 5 + 2  # stop timeout + kill margin + 2 s
    assert slow.status() is JobState.QUEUED  # handed back: not lost


def test_a_sigkilled_supervisor_takes_its_children_with_it(supervise: object, japp: Stem) -> None:
    stack = supervise("--workers", "2")  # type: ignore[operator]
    wait_until(lambda: len(stack.actors("worker")) == 2, what="two workers")
    tree = stack.tree()
    os.kill(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait()
    wait_until(lambda: gone(tree), timeout_s=15, what="children to exit")


def test_a_frozen_worker_is_replaced_and_its_job_completes(
    supervise: object, japp: Stem, tmp_path: Path
) -> None:
    stack = supervise("--workers", "1", "--heartbeat-timeout-s", "4")  # type: ignore[operator]
    wait_until(lambda: len(stack.actors("worker")) == 1, what="a worker")
    log = tmp_path / "runs.txt"
    handle = jobs.arecord.enqueue(str(log), "frozen", 2.0)
    wait_until(lambda: lines(log) == ["frozen"], what="the job to start")
    [frozen] = stack.actors("worker")
    frozen.send_signal(signal.SIGSTOP)
    assert handle.result(timeout_s=90) == "frozen"
    # SIGTERM + SIGCONT lets the frozen worker finish its stop (it may be the one that
    # completed the job), then it is gone; under load that takes a while.
    wait_until(
        lambda: not frozen.is_running() or frozen.status() == psutil.STATUS_ZOMBIE,
        60,
        what="the frozen worker to be gone",
    )
    assert lines(log) == ["frozen", "frozen"]


def test_a_poison_job_that_kills_its_worker_ends_in_the_dlq_and_the_queue_flows(
    supervise: object, japp: Stem
) -> None:
    poison = japp.enqueue("poison.kill_worker")
    behind = [japp.enqueue("poison.add", [i, 1]) for i in range(5)]
    # each crash costs a restart; allow enough for max_deliveries (5) of them
    stack = supervise(  # type: ignore[operator]
        "--workers", "1", "--max-restarts", "20", app="tests.apps.poison:app"
    )
    with pytest.raises(JobFailed, match="max-deliveries"):
        poison.result(timeout_s=120)
    assert [h.result(timeout_s=60) for h in behind] == [i + 1 for i in range(5)]
    assert stack.proc.poll() is None


def test_without_a_redis_url_it_starts_an_embedded_redis_and_runs_jobs(
    supervise: object, tmp_path: Path, namespace: str
) -> None:
    stack = supervise("--workers", "1", redis=False)  # type: ignore[operator]
    url_file = tmp_path / "data" / "redis.url"
    wait_until(url_file.exists, what="the embedded Redis URL")
    app = Stem(url_file.read_text().strip(), namespace=namespace)
    try:
        assert app.enqueue("tests.apps.jobs.add", [20, 22]).result(timeout_s=60) == 42
    finally:
        app.close()
    assert (tmp_path / "data" / "redis" / "redis.conf").exists()
    os.kill(stack.proc.pid, signal.SIGTERM)
    assert stack.proc.wait(timeout=60) == 0
    assert not url_file.exists()


def test_a_supervisor_that_gives_up_exits_1_with_only_the_gave_up_line(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path
) -> None:
    # The supervisor imports the app fine; every worker it starts fails at its import.
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", "tests.apps.broken:app", "supervise", "--no-beat", "--no-reclaimer"]
    argv += ["--max-restarts", "1", "--within-s", "60", "--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "PYTHONPATH": str(repo_root), "STEM_TEST_BREAK_APP": "actors"}
    proc = subprocess.Popen(
        argv, cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, stderr
    [line] = stderr.decode().splitlines()
    assert line.startswith("stem: error: supervisor gave up")
    assert "worker" in line
    assert b"RuntimeError: the database settings are missing" in stdout  # the worker's line


def _crash(stack: Stack) -> list[psutil.Process]:
    """SIGKILL ``stack``'s whole tree at once, as a machine that dies: the supervisor is
    frozen first (so it restarts nothing and its children get no parent-death signal to
    stop gracefully on), then every process group of the tree is killed."""
    os.kill(stack.proc.pid, signal.SIGSTOP)
    tree = stack.tree()
    for group in {os.getpgid(p.pid) for p in tree if p.is_running()}:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    os.killpg(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait()
    return tree


def _workers_by_host(redis_url: str, namespace: str) -> dict[str, int]:
    """What `stem observe workers --json` shows: live workers per host part of their id."""
    argv = ["--redis-url", redis_url, "--namespace", namespace, "observe", "workers", "--json"]
    shown = CliRunner().invoke(main, argv)
    assert shown.exit_code == 0, shown.output
    return Counter(w["id"].split("/")[0] for w in json.loads(shown.stdout))


def test_two_hosts_share_one_redis_and_a_sigkilled_hosts_jobs_complete_on_the_other(
    supervise: object, japp: Stem, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    config = tmp_path / "stem.toml"
    config.write_text(
        f'[[schedule]]\nname = "tick"\ntask = "tests.apps.jobs.ledger"\nevery_s = 1\n'
        f'args = ["{ticks}"]\n'
    )
    options = ("--workers", "2", "--concurrency", "4", "--prefetch", "2", "--config", str(config))
    a = supervise(*options, host="host-a", beat=True)  # type: ignore[operator]
    b = supervise(*options, host="host-b", beat=True)  # type: ignore[operator]
    wait_until(
        lambda: _workers_by_host(redis_url, namespace) == {"host-a": 2, "host-b": 2},
        60,
        "`stem observe workers` to show two workers on each host",
    )
    wait_until(lambda: len(a.actors("beat")) == len(b.actors("beat")) == 1, what="two beats")
    wait_until(lambda: len(set(lines(ticks)[1::2])) >= 3, 30, "both beats to run a few ticks")

    log = tmp_path / "runs.txt"
    handles = jobs.arecord.enqueue_many([(str(log), str(i), 1.5) for i in range(40)])
    held_by_a = lambda: any(  # noqa: E731
        w["id"].startswith("host-a/") and w.get("running", 0) > 0 for w in japp.broker.workers()
    )
    wait_until(held_by_a, 30, "host A to run some of the jobs")
    beat_runs_before = Counter(lines(ticks)[1::2])
    tree = _crash(a)
    wait_until(lambda: gone(tree), 15, "nothing of host A to be left")

    for i, h in enumerate(handles):
        assert h.result(timeout_s=90) == str(i)  # every job completed, its result readable
    runs = Counter(lines(log))
    assert set(runs) == {str(i) for i in range(40)}
    # Only what host A was running when it died runs again (2 workers x 4 slots).
    assert sum(n - 1 for n in runs.values()) <= 2 * 4
    stats = japp.broker.client.hget(japp.broker.keys.queue("default").stats, "reclaimed")
    assert int(stats or 0) > 0  # host B's reclaimer took host A's jobs after their lease
    assert _workers_by_host(redis_url, namespace).get("host-b") == 2
    assert b.proc.poll() is None

    # Two beats fired every tick once: one job per tick (its id names the tick), each run
    # once while both hosts lived, and host B's beat alone carries on after the crash.
    assert beat_runs_before and max(beat_runs_before.values()) == 1
    last_tick = max(beat_runs_before)
    wait_until(lambda: max(lines(ticks)[1::2]) > last_tick, 30, "a tick after the crash")
    fired = sorted(int(job.rsplit(":", 1)[1]) for job in set(lines(ticks)[1::2]))
    assert all(later - earlier >= 1000 for earlier, later in itertools.pairwise(fired))
