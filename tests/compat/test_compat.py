"""Data that an older stem left in Redis is read and processed by today's code.

Each ``v*.json`` beside this file holds a namespace's keys as one envelope version wrote
them (``generate.py`` made it once; see its docstring). Every test loads a file into this
test's namespace on the real Redis and runs today's worker, DLQ commands or schedule store
over it. A failure here means an upgrade would strand jobs: see docs/release.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from stem import Stem
from stem.beat.store import Schedules
from stem.broker import Settlement
from stem.cli import main
from stem.errors import JobFailed
from stem.outcome import Verdict
from stem.schedule import Cron
from stem.states import JobState
from tests.compat import redisdump

HERE = Path(__file__).resolve().parent
FIXTURES = sorted(HERE.glob("v*.json"))


@pytest.fixture(params=FIXTURES, ids=[p.stem for p in FIXTURES])
def data(request: pytest.FixtureRequest, app: Stem, namespace: str) -> dict[str, Any]:
    """The fixture file's keys, loaded into this test's namespace; its ``expect`` section."""
    doc: dict[str, Any] = json.loads(Path(request.param).read_text())
    redisdump.load(app.broker.client, doc["keys"], namespace)
    expect: dict[str, Any] = doc["expect"]
    return expect


def _stem(redis_url: str, namespace: str, *argv: str) -> Result:
    return CliRunner().invoke(main, ["--redis-url", redis_url, "--namespace", namespace, *argv])


def test_there_is_a_fixture_for_envelope_version_1() -> None:
    assert [p.name for p in FIXTURES][:1] == ["v1.json"]


def test_a_worker_completes_the_jobs_an_older_version_enqueued(
    data: dict[str, Any], app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    argv += ["--app", "tests.compat.tasks:app", "worker", "--burst", "--queues", "default,other"]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    done = subprocess.run(argv, cwd=repo_root, env=env, timeout=90, check=False)
    assert done.returncode == 0
    results = {job_id: app.job(job_id).result(timeout_s=10) for job_id in data["results"]}
    assert results == data["results"]


def test_an_idempotency_key_an_older_version_stored_still_returns_its_job(
    data: dict[str, Any], app: Stem
) -> None:
    again = app.enqueue("tests.compat.tasks.add", [20, 22], idempotency_key="compat-1")
    assert data["results"][again.id] == 42


def test_records_an_older_version_settled_read_in_full_with_their_envelope(
    data: dict[str, Any], app: Stem
) -> None:
    for job_id, reason in data["dead"].items():
        record = app.job(job_id).info()
        assert record is not None
        assert (record.reason, record.state.value in ("failed", "dead")) == (reason, True)
        assert record.envelope and record.worker and record.deliveries == 1
        assert _stem_doc(app, job_id)["task"] is not None
        with pytest.raises(JobFailed):  # an older latch or none: the record answers first
            app.job(job_id).result(timeout_s=5)


def test_a_waiter_on_a_job_an_older_version_enqueued_is_woken_by_todays_settle(
    data: dict[str, Any], app: Stem
) -> None:
    job_id = next(iter(data["results"]))
    handle = app.job(job_id)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(handle.result(timeout_s=60)))
    waiter.start()
    jkey = app.broker.keys.queue(handle.queue).job(job_id)
    deadline = time.monotonic() + 30
    while not app.broker.client.hexists(jkey, "waited"):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    while deliveries := app.broker.fetch("default", "w", 100):
        app.broker.settle([Settlement(d, Verdict.COMPLETE, '"done"') for d in deliveries])
    waiter.join(timeout=60)
    assert got == ["done"]
    assert app.broker.client.memory_usage(jkey) <= 250  # rebuilt in today's layout


def _stem_doc(app: Stem, job_id: str) -> dict[str, Any]:
    from stem.cli.result import record_doc

    record = app.job(job_id).info()
    assert record is not None
    return record_doc(record)


def test_dlq_list_and_show_read_entries_an_older_version_wrote(
    data: dict[str, Any], redis_url: str, namespace: str
) -> None:
    listed = _stem(redis_url, namespace, "dlq", "list", "--json")
    assert listed.exit_code == 0, listed.output
    reasons = {e["job_id"]: e["reason"] for e in json.loads(listed.output)}
    assert reasons == data["dead"]
    for job_id in data["dead"]:
        shown = _stem(redis_url, namespace, "dlq", "show", job_id, "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["job_id"] == job_id


def test_dlq_replay_requeues_an_entry_an_older_version_wrote(
    data: dict[str, Any], app: Stem, redis_url: str, namespace: str
) -> None:
    job_id = next(j for j, reason in data["dead"].items() if reason == "max-retries")
    replayed = _stem(redis_url, namespace, "dlq", "replay", job_id)
    assert (replayed.exit_code, replayed.output.split()) == (0, [job_id])
    assert app.job(job_id).status() is JobState.QUEUED


def test_the_schedule_store_loads_entries_and_runs_an_older_version_wrote(
    data: dict[str, Any], app: Stem, redis_url: str, namespace: str
) -> None:
    snapshot = Schedules(app.broker).snapshot()
    assert (sorted(snapshot.entries), snapshot.errors) == (data["schedules"], {})
    assert snapshot.entries["nightly"].effective().schedule == Cron("30 2 * * *", "Europe/Berlin")
    assert snapshot.entries["every-5m"].enabled is False
    last = snapshot.records["nightly"].last_run
    assert last is not None
    assert last.manual
    listed = _stem(redis_url, namespace, "schedule", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert sorted(e["name"] for e in json.loads(listed.output)) == data["schedules"]
