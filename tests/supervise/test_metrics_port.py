"""`stem supervise --metrics-port`: /metrics for the whole deployment, restarts included."""

from __future__ import annotations

import json
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stem import Stem
from tests.apps import jobs
from tests.supervise.test_supervise import Stack, supervise
from tests.worker.conftest import wait_until

__all__ = ["supervise"]  # the fixture, shared with test_supervise

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def endpoint(stack: Stack) -> str:
    """The URL the supervisor said it serves /metrics on (it listens on a free port)."""
    found: list[str] = []

    def announced() -> bool:
        match = re.search(r"serving metrics on http://[^:]+:(\d+)/metrics", stack.log.read_text())
        if match:
            found.append(f"http://127.0.0.1:{match.group(1)}/metrics")
        return bool(match)

    wait_until(announced, what="the metrics endpoint")
    return found[0]


def scrape(url: str) -> Samples:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(got: Samples, name: str, **match: str) -> float:
    """The sum of ``name``'s samples whose labels include ``match`` (over every worker)."""
    return sum(
        value
        for (n, labels), value in got.items()
        if n == name and match.items() <= dict(labels).items()
    )


def test_after_100_jobs_on_two_workers_the_supervisors_endpoint_sums_them_and_counts_a_restart(
    supervise: object, japp: Stem
) -> None:
    stack = supervise("--workers", "2", "--metrics-port", "0")  # type: ignore[operator]
    url = endpoint(stack)
    handles = jobs.thread_add.enqueue_many([(i, 1) for i in range(100)])
    for h in handles:
        assert h.result(timeout_s=60) is not None
    task = "tests.apps.jobs.thread_add"
    got: Samples = {}

    def counted() -> bool:  # heartbeats carry the counts every 2 s
        got.update(scrape(url))
        return total(got, "stem_jobs_processed_total", queue="default") == 100

    wait_until(counted, what="100 processed jobs in the exposition")
    assert got[("stem_up", ())] == 1
    assert got[("stem_workers_alive", ())] == 2
    assert got[("stem_actors_alive", (("actor", "worker"),))] == 2
    for family in ("stem_job_run_duration_seconds", "stem_job_wait_duration_seconds"):
        assert total(got, f"{family}_count", queue="default", task=task) == 100
        assert total(got, f"{family}_bucket", queue="default", task=task, le="+Inf") == 100
    assert total(got, "stem_jobs_failed_total") == 0
    assert got[("stem_queue_jobs", (("queue", "default"), ("state", "ready")))] == 0
    assert got[("stem_supervisor_restarts_total", (("actor", "worker"),))] == 0
    assert got[("stem_supervisor_restarts_total", (("actor", "reclaimer"),))] == 0

    victim = stack.actors("worker")[0]
    victim.send_signal(signal.SIGKILL)
    wait_until(
        lambda: scrape(url).get(("stem_supervisor_restarts_total", (("actor", "worker"),))) == 1,
        what="the restart in the exposition",
    )


def test_metrics_port_is_a_supervise_config_key(tmp_path: Path) -> None:
    from stem.supervise import options_from_file

    config = tmp_path / "stem.toml"
    config.write_text('[supervise]\napp_spec = "a:b"\nmetrics_port = 9808\n')
    assert options_from_file(config, {}).metrics_port == 9808


def test_under_json_logs_the_supervisors_own_lines_are_json_objects_too(
    supervise: object, japp: Stem
) -> None:
    stack = supervise(  # type: ignore[operator]
        "--workers", "0", "--no-reclaimer", "--json-logs", "--metrics-port", "0", redis=False
    )
    wait_until(lambda: "embedded Redis at" in stack.log.read_text(), what="the Redis line")
    endpoint(stack)
    records = [json.loads(line) for line in stack.log.read_text().splitlines() if line]
    own = [r for r in records if r["logger"] == "supervisor" and r["msg"].startswith("stem: ")]
    assert {r["msg"].split(" ")[1] for r in own} >= {"supervising", "embedded", "serving"}
    for record in own:
        assert record["level"] == "INFO" and record["actor"] == "supervisor"
        assert {"ts", "pid", "child", "stream"} <= set(record)


def test_a_metrics_port_in_use_is_one_line_and_exit_2_before_any_actor_starts(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path
) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
        argv += ["--app", "tests.apps.jobs:app", "supervise", "--data-dir", str(tmp_path)]
        argv += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
        done = subprocess.run(
            argv,
            cwd=repo_root,
            env={**os.environ, "PYTHONPATH": str(repo_root)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"stem: error: cannot serve metrics on 127.0.0.1:{port}: ")
    )
    assert "Traceback" not in done.stderr
    assert "supervising" not in done.stdout  # nothing was started
