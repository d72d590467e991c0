"""``stem supervise`` runs the rate limiter: by default when the app defines limits,
``--ratelimiter/--no-ratelimiter`` (or ``ratelimiter`` in ``[supervise]``) decide."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from stem import Stem
from stem.supervise import SuperviseOptions, build_specs
from supervisor import read_status
from tests.worker.conftest import wait_until

Procs = list[subprocess.Popen[bytes]]


def test_ratelimiter_true_adds_a_ratelimit_child_and_false_leaves_it_out() -> None:
    url = "redis://127.0.0.1:1/0"
    with_it, _ = build_specs(SuperviseOptions("app:app", ratelimiter=True), url)
    without, _ = build_specs(SuperviseOptions("app:app", ratelimiter=False), url)

    [limiter] = [s for s in with_it if s.name == "ratelimit"]
    assert limiter.argv[-1] == "ratelimit"
    assert "--app" in limiter.argv
    assert [s.name for s in without] == ["worker", "reclaimer", "beat"]


def supervised_children(
    redis_url: str, namespace: str, root: Path, data: Path, procs: Procs, app: str, *flags: str
) -> list[str]:
    """Start `stem supervise` (no workers, no beat) and return its children's names."""
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", app, "supervise", "--workers", "0", "--no-beat"]
    argv += ["--data-dir", str(data), *flags]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(argv, cwd=root, env=env, start_new_session=True)
    procs.append(proc)
    status = data / "supervise.json"
    wait_until(status.exists, what="the supervisor's status file")
    names = [c.name for c in read_status(status).children]
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    return names


def test_supervise_runs_a_rate_limiter_for_an_app_with_limits_and_it_announces_itself(
    lapp: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", "tests.apps.limited:app", "supervise", "--workers", "0", "--no-beat"]
    argv += ["--no-reclaimer", "--data-dir", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.Popen(argv, cwd=repo_root, env=env, start_new_session=True)
    procs.append(proc)

    wait_until(lambda: lapp.broker.actors("ratelimiter"), what="a supervised rate limiter")


def test_no_ratelimiter_leaves_it_out_and_an_app_without_limits_gets_none_by_default(
    lapp: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    args = (redis_url, namespace, repo_root)
    limited = "tests.apps.limited:app"

    assert supervised_children(*args, tmp_path / "a", procs, limited, "--no-ratelimiter") == [
        "reclaimer"
    ]
    assert supervised_children(*args, tmp_path / "b", procs, "tests.apps.jobs:app") == ["reclaimer"]
    assert supervised_children(*args, tmp_path / "c", procs, limited) == [
        "reclaimer",
        "ratelimit",
    ]
