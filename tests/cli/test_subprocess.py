"""The real ``stem`` process: ``python -m stem.cli`` (and ``python -m stem``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stem import JobState, Stem
from stem.embedded import free_port


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("STEM_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("module", ["stem.cli", "stem"])
def test_enqueue_in_a_real_process_prints_an_id_of_a_job_that_exists(
    module: str, app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    argv = ["-m", module, "--redis-url", redis_url, "--namespace", namespace, "enqueue", "t"]
    done = run(repo_root, *argv, "--args", "[1]")
    assert (done.returncode, done.stderr) == (0, "")
    assert app.job(done.stdout.strip()).status() is JobState.QUEUED


def test_unreachable_redis_in_a_real_process_is_one_line_and_exit_3(repo_root: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run(repo_root, "-m", "stem.cli", "--redis-url", url, "result", "get", "x")
    assert done.returncode == 3
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"stem: error: cannot reach Redis at {url}")


def test_a_burst_worker_runs_the_job_and_exits_0(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    job = app.enqueue("tests.apps.jobs.add", [2, 3])
    argv = ["-m", "stem.cli", "--redis-url", redis_url, "--namespace", namespace]
    done = run(repo_root, *argv, "worker", "--app", "tests.apps.jobs:app", "--burst")
    assert done.returncode == 0, done.stderr
    assert job.result(timeout_s=10) == 5


def test_ctrl_c_while_waiting_exits_130_with_one_line(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    job = app.enqueue("t")
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["result", "wait", job.id, "--timeout", "60"]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.Popen(
        argv, cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Synchronise on Redis itself: the CLI is blocked on the job's done latch.
        deadline = time.monotonic() + 60
        while not any(c.get("cmd") == "blmove" for c in app.broker.client.client_list()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the CLI never started waiting"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (130, "", "stem: error: interrupted\n")


def test_a_closed_stdout_ends_quietly_with_141(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    app.enqueue("t")
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write fails with EPIPE
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", redis_url, "--namespace", namespace]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    try:
        done = subprocess.run(
            [*argv, "observe", "queues"],
            cwd=repo_root,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


def test_a_worker_whose_app_raises_on_import_exits_2_with_the_error_on_one_line(
    redis_url: str, repo_root: Path
) -> None:
    argv = ["-m", "stem", "--redis-url", redis_url, "worker", "--app", "tests.apps.broken:app"]
    env = {**os.environ, "PYTHONPATH": str(repo_root), "STEM_TEST_BREAK_APP": "always"}
    done = subprocess.run(
        [sys.executable, *argv], cwd=repo_root, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("stem: error: --app 'tests.apps.broken:app': cannot import")
    assert "RuntimeError: the database settings are missing" in line


def test_a_worker_whose_app_has_a_syntax_error_exits_2_with_the_error_on_one_line(
    redis_url: str, repo_root: Path, tmp_path: Path
) -> None:
    (tmp_path / "typo_app.py").write_text("from stem import Stem\napp = Stem(\n")
    argv = ["-m", "stem", "--redis-url", redis_url, "worker", "--app", "typo_app:app"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), str(tmp_path)])}
    done = subprocess.run(
        [sys.executable, *argv], cwd=repo_root, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "cannot import 'typo_app': SyntaxError:" in line


def test_sigterm_to_a_workers_process_group_lets_running_pool_jobs_finish_once_and_exits_0(
    app: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path
) -> None:
    # What Heroku and `stem supervise` do: SIGTERM to every process of the group, the
    # process-pool children included. The children ignore it; the worker lets them finish.
    marks = tmp_path / "started"
    jobs = [app.enqueue("tests.apps.jobs.record", [str(marks), f"job{i}", 2.0]) for i in range(5)]
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["worker", "--app", "tests.apps.jobs:app", "--pool", "processes", "-c", "5"]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.Popen(
        argv,
        cwd=repo_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (len(marks.read_text().split()) if marks.exists() else 0) < 5:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the 5 jobs never all started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert sorted(marks.read_text().split()) == [f"job{i}" for i in range(5)]
    assert [job.result(timeout_s=0) for job in jobs] == [f"job{i}" for i in range(5)]
    records = [job.info() for job in jobs]
    assert [(r.state, r.attempt) if r else None for r in records] == [(JobState.SUCCEEDED, 0)] * 5
