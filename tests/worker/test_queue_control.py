"""Queue and job control against real worker processes: pause/resume, revoke."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner, Result

from stem import JobRevoked, JobState, Stem
from stem.cli import main
from tests.apps import jobs
from tests.worker.conftest import APP_SPEC, lines, start_worker, wait_until

Procs = list[subprocess.Popen[bytes]]


def cli(redis_url: str, namespace: str, *args: str) -> Result:
    """``stem <args>`` in process, on this test's Redis and namespace."""
    return CliRunner().invoke(main, ["--redis-url", redis_url, "--namespace", namespace, *args])


def beating(app: Stem, n: int) -> bool:
    return len(app.broker.workers()) >= n


def reclaimer(redis_url: str, namespace: str, root: Path) -> subprocess.Popen[bytes]:
    """A real ``stem reclaim`` process on the test app (lease 1 s), rounds every 0.2 s."""
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", APP_SPEC, "reclaim", "--interval-s", "0.2"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)


def stop(worker: subprocess.Popen[bytes]) -> int:
    os.killpg(worker.pid, signal.SIGTERM)
    return worker.wait(timeout=30)


def test_a_paused_queue_accepts_jobs_but_no_worker_starts_one_until_it_is_resumed(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs, tmp_path: Path
) -> None:
    before = start_worker(redis_url, namespace, repo_root, name="before")
    procs.append(before)
    wait_until(lambda: beating(japp, 1), what="the first worker's heartbeat")
    paused = cli(redis_url, namespace, "queue", "pause", "default")
    assert (paused.exit_code, paused.output) == (0, "default paused=yes changed=yes\n")
    after = start_worker(redis_url, namespace, repo_root, name="after")  # started while paused
    procs.append(after)
    wait_until(lambda: beating(japp, 2), what="the second worker's heartbeat")
    out = tmp_path / "ran"
    handles = [jobs.arecord.enqueue(str(out), f"j{i}") for i in range(5)]

    # The property itself: for 2 s, no job leaves the ready state.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        assert [h.status() for h in handles] == [JobState.QUEUED] * 5
        assert lines(out) == []
        time.sleep(0.05)
    listed = cli(redis_url, namespace, "queue", "list")
    assert listed.output == "default ready=5 delayed=0 pending=0 dead=0 paused=yes\n"

    resumed = cli(redis_url, namespace, "queue", "resume", "default")
    assert (resumed.exit_code, resumed.output) == (0, "default paused=no changed=yes\n")
    assert [h.result(timeout_s=30) for h in handles] == [f"j{i}" for i in range(5)]
    assert sorted(lines(out)) == [f"j{i}" for i in range(5)]
    assert (stop(before), stop(after)) == (0, 0)


def test_drain_returns_once_nothing_is_ready_delayed_or_running(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs, tmp_path: Path
) -> None:
    out = tmp_path / "ran"
    handles = [jobs.arecord.enqueue(str(out), f"j{i}", 0.2) for i in range(3)]
    handles.append(jobs.arecord.enqueue_with(delay_s=0.5)(str(out), "late"))
    too_soon = cli(redis_url, namespace, "queue", "drain", "default", "--timeout", "0")
    assert too_soon.exit_code == 5
    procs.append(start_worker(redis_url, namespace, repo_root))

    drained = cli(redis_url, namespace, "queue", "drain", "default", "--timeout", "60")

    assert drained.exit_code == 0, drained.output
    assert drained.output.startswith("default drained=yes waited_s=")
    assert [h.status() for h in handles] == [JobState.SUCCEEDED] * 4


def test_a_revoked_delayed_job_never_runs(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs, tmp_path: Path
) -> None:
    out = tmp_path / "ran"
    revoked = jobs.arecord.enqueue_with(delay_s=0.3)(str(out), "revoked")
    done = cli(redis_url, namespace, "job", "revoke", revoked.id)
    assert (done.exit_code, done.output) == (0, f"{revoked.id} queue=default was=scheduled\n")
    marker = jobs.arecord.enqueue_with(delay_s=0.6)(str(out), "marker")
    procs.append(start_worker(redis_url, namespace, repo_root))

    assert marker.result(timeout_s=30) == "marker"  # due after the revoked one

    assert lines(out) == ["marker"]
    assert revoked.status() is JobState.REVOKED
    with pytest.raises(JobRevoked):
        revoked.result(timeout_s=1)
    assert cli(redis_url, namespace, "result", "get", revoked.id).exit_code == 1


def test_a_queued_job_revoked_before_any_worker_starts_never_runs(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs, tmp_path: Path
) -> None:
    out = tmp_path / "ran"
    revoked = jobs.arecord.enqueue(str(out), "revoked")
    assert cli(redis_url, namespace, "job", "revoke", revoked.id).exit_code == 0
    again = cli(redis_url, namespace, "job", "revoke", revoked.id)
    assert again.exit_code == 2  # finished already: nothing to revoke
    marker = jobs.arecord.enqueue(str(out), "marker")

    worker = start_worker(redis_url, namespace, repo_root, "--burst")
    procs.append(worker)

    assert worker.wait(timeout=30) == 0
    assert marker.result(timeout_s=1) == "marker"
    assert lines(out) == ["marker"]
    assert revoked.status() is JobState.REVOKED
    assert japp.broker.queue_stats("default").ready == 0  # its entry was dropped


def test_terminate_cancels_a_running_async_job_and_settles_it_as_revoked(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs, tmp_path: Path
) -> None:
    out = tmp_path / "ran"
    running = jobs.arecord.enqueue(str(out), "long", 600)
    worker = start_worker(redis_url, namespace, repo_root)
    procs.append(worker)
    wait_until(lambda: lines(out) == ["long"], what="the job to start")
    refused = cli(redis_url, namespace, "job", "revoke", running.id)
    assert refused.exit_code == 2  # running: needs --terminate
    assert running.status() is JobState.STARTED

    started = time.monotonic()
    done = cli(redis_url, namespace, "job", "revoke", running.id, "--terminate")
    assert (done.exit_code, done.output) == (0, f"{running.id} queue=default was=started\n")
    wait_until(
        lambda: japp.broker.queue_stats("default").pending == 0,
        timeout_s=10,
        what="the worker to cancel the job and ack it",
    )

    assert time.monotonic() - started < 5
    assert running.status() is JobState.REVOKED
    after = jobs.add.enqueue(1, 2)  # the worker goes on working
    assert after.result(timeout_s=30) == 3
    assert stop(worker) == 0


def started(path: Path) -> dict[str, int]:
    """What the ``gated`` tasks wrote to ``path``: token (or ``token:done``) -> pid."""
    if not path.exists():
        return {}
    return {token: int(pid) for token, pid in (ln.split() for ln in path.read_text().splitlines())}


def gone(pid: int) -> bool:
    """The process ``pid`` has exited (a zombie not yet reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_terminate_kills_the_pool_child_of_a_running_sync_job_and_the_pool_replaces_it(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs, tmp_path: Path
) -> None:
    out, gate = tmp_path / "ran", tmp_path / "gate"
    worker = start_worker(redis_url, namespace, repo_root, "--concurrency", "3")
    procs.append(worker)
    running = jobs.gated.enqueue(str(out), "victim", str(gate))
    wait_until(lambda: "victim" in started(out), what="the job to start in a pool child")
    neighbour = jobs.gated.enqueue(str(out), "neighbour", str(gate))
    wait_until(lambda: "neighbour" in started(out), what="a second job in another child")
    victim = started(out)["victim"]
    assert victim not in (worker.pid, started(out)["neighbour"])

    done = cli(redis_url, namespace, "job", "revoke", running.id, "--terminate")

    assert (done.exit_code, done.output) == (0, f"{running.id} queue=default was=started\n")
    wait_until(lambda: gone(victim), what="the worker to kill the job's child")
    wait_until(
        lambda: japp.broker.queue_stats("default").pending == 1,
        what="the worker to ack the revoked job",
    )
    assert neighbour.status() is JobState.STARTED  # untouched, still running
    assert running.status() is JobState.REVOKED
    with pytest.raises(JobRevoked):
        running.result(timeout_s=1)
    # The pool is whole again: three jobs at once (the neighbour's and two more), each in
    # its own child, none of them the dead one.
    again = [jobs.gated.enqueue(str(out), f"again{i}", str(gate)) for i in range(2)]
    wait_until(lambda: {"again0", "again1"} <= started(out).keys(), what="two more jobs")
    pids = started(out)
    assert len({pids["neighbour"], pids["again0"], pids["again1"]}) == 3
    assert victim not in (pids["again0"], pids["again1"])
    gate.touch()
    assert [h.result(timeout_s=30) for h in (neighbour, *again)] == [
        "neighbour",
        "again0",
        "again1",
    ]
    assert "victim:done" not in started(out)
    assert stop(worker) == 0


def test_terminate_abandons_a_running_thread_job_and_ignores_its_late_result(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs, tmp_path: Path
) -> None:
    out, gate = tmp_path / "ran", tmp_path / "gate"
    running = jobs.thread_gated.enqueue(str(out), "long", str(gate))
    worker = start_worker(redis_url, namespace, repo_root)
    procs.append(worker)
    wait_until(lambda: "long" in started(out), what="the thread job to start")

    done = cli(redis_url, namespace, "job", "revoke", running.id, "--terminate")

    assert (done.exit_code, done.output) == (0, f"{running.id} queue=default was=started\n")
    wait_until(
        lambda: japp.broker.queue_stats("default").pending == 0,
        what="the worker to abandon the thread job and ack it",
    )
    assert "long:done" not in started(out)  # the thread still runs: it cannot be killed
    assert running.status() is JobState.REVOKED
    assert jobs.thread_add.enqueue(1, 2).result(timeout_s=30) == 3  # the worker serves on
    gate.touch()
    wait_until(lambda: "long:done" in started(out), what="the abandoned thread to finish")
    assert jobs.add.enqueue(2, 2).result(timeout_s=30) == 4  # its late end harmed nothing
    assert running.status() is JobState.REVOKED  # its late result is ignored
    with pytest.raises(JobRevoked):
        running.result(timeout_s=1)
    assert stop(worker) == 0


@pytest.mark.parametrize("taken_back_by", ["its replacement", "the reclaimer"])
def test_a_revoked_job_whose_worker_died_never_runs_again_after_a_restart(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    procs: Procs,
    tmp_path: Path,
    taken_back_by: str,
) -> None:
    out = tmp_path / "ran"
    running = jobs.arecord.enqueue(str(out), "long", 600)
    first = start_worker(redis_url, namespace, repo_root, name="first")
    procs.append(first)
    wait_until(lambda: lines(out) == ["long"], what="the job to start")
    os.killpg(first.pid, signal.SIGKILL)  # no settle, no hand-back: it stays pending
    first.wait(timeout=30)
    assert cli(redis_url, namespace, "job", "revoke", running.id, "--terminate").exit_code == 0

    if taken_back_by == "its replacement":  # same name: it recovers its entries at start
        procs.append(start_worker(redis_url, namespace, repo_root, name="first"))
    else:
        procs.append(start_worker(redis_url, namespace, repo_root, name="second"))
        procs.append(reclaimer(redis_url, namespace, repo_root))

    wait_until(
        lambda: japp.broker.queue_stats("default").pending == 0,
        what=f"{taken_back_by} to take the dead worker's entry back",
    )
    marker = jobs.arecord.enqueue(str(out), "marker")
    assert marker.result(timeout_s=30) == "marker"
    assert lines(out) == ["long", "marker"]  # ran once, before it was revoked
    assert running.status() is JobState.REVOKED
    assert japp.broker.queue_stats("default").ready == 0


def test_stem_worker_stop_makes_a_real_worker_exit_0_after_a_ping_and_a_list(
    japp: Stem, redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    worker = start_worker(redis_url, namespace, repo_root, name="ctl")
    procs.append(worker)
    wait_until(lambda: beating(japp, 1), what="the worker's heartbeat")
    [name] = [w["id"] for w in japp.broker.workers()]
    assert name.endswith("ctl")

    listed = cli(redis_url, namespace, "worker", "list")
    assert listed.exit_code == 0 and listed.output.startswith(f"{name} host="), listed.output
    pinged = cli(redis_url, namespace, "worker", "ping", name, "--json")
    assert pinged.exit_code == 0, pinged.output
    assert cli(redis_url, namespace, "worker", "ping", "nosuch").exit_code == 4

    stopped = cli(redis_url, namespace, "worker", "stop", name)

    assert (stopped.exit_code, stopped.output) == (0, f"{name} stop=sent\n")
    assert worker.wait(timeout=30) == 0
    assert japp.broker.workers() == []
