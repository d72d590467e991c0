"""Smoke test of samples/microservice: a Flask service and a worker, as real processes.

The web service (``flask run``) has a Stem app without tasks and enqueues by name; the
worker service (``stem worker``) defines the tasks. Both run against the test Redis in this
test's namespace; the result comes back over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from stem.embedded import free_port


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=40) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if exc.headers.get_content_type().endswith("json") else raw


def _wait_serving(port: int, web: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Poll until the web service answers (it is a real process starting up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert web.poll() is None, "the web service exited"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs/none", timeout=2)
        except urllib.error.HTTPError:
            return  # it answered (404 for an unknown job)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("the web service did not start") from None
            time.sleep(0.05)
        else:
            return


def test_the_web_service_enqueues_by_name_and_the_worker_service_answers(
    redis_url: str, namespace: str, repo_root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(repo_root),
        "STEM_REDIS_URL": redis_url,
        "STEM_NAMESPACE": namespace,
    }
    port = free_port()
    web_argv = [sys.executable, "-m", "flask", "--app", "samples.microservice.web", "run"]
    worker_argv = [sys.executable, "-m", "stem", "--app", "samples.microservice.tasks:app"]
    for argv in (
        [*web_argv, "--host", "127.0.0.1", "--port", str(port)],
        [*worker_argv, "worker", "--pool", "threads"],
    ):
        procs.append(subprocess.Popen(argv, cwd=repo_root, env=env, start_new_session=True))
    _wait_serving(port, procs[0])
    base = f"http://127.0.0.1:{port}"

    status, created = _http("POST", f"{base}/jobs/math.add", {"args": [2, 3]})
    assert status == 202
    status, done = _http("GET", f"{base}/jobs/{created['id']}?wait=30")
    assert (status, done) == (200, {"id": created["id"], "state": "succeeded", "result": 5})

    status, created = _http("POST", f"{base}/jobs/text.shout", {"kwargs": {"text": "hi"}})
    status, done = _http("GET", f"{base}/jobs/{created['id']}?wait=30")
    assert (status, done["result"]) == (200, "HI!")


def test_the_web_service_refuses_bad_arguments_and_unknown_job_ids(
    redis_url: str, namespace: str, repo_root: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(repo_root), "STEM_REDIS_URL": redis_url}
    env["STEM_NAMESPACE"] = namespace
    port = free_port()
    argv = [sys.executable, "-m", "flask", "--app", "samples.microservice.web", "run"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    procs.append(subprocess.Popen(argv, cwd=repo_root, env=env, start_new_session=True))
    _wait_serving(port, procs[0])
    status, body = _http("POST", f"http://127.0.0.1:{port}/jobs/math.add", {"args": "2, 3"})
    assert (status, sorted(body)) == (400, ["error"])
    status, _ = _http("GET", f"http://127.0.0.1:{port}/jobs/0123456789abcdef?wait=1")
    assert status == 404
