"""Logs of a real worker process: job events, a pool child's logging, JSON lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stem import Stem
from stem.context import JobContext
from stem.observe.events import JobEvents
from stem.observe.logs import JobFilter, TextFormatter, set_job_fields
from stem.outcome import Outcome

APP = "tests.apps.observed:app"


def burst(root: Path, redis_url: str, namespace: str, *flags: str, **env: str) -> str:
    """Run ``stem worker --burst`` to the end; its stderr (the log)."""
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", redis_url]
    argv += ["--namespace", namespace, "--app", APP, "worker", "--burst", *flags]
    environ = {**os.environ, "PYTHONPATH": str(root), **env}
    for name in ("STEM_REDIS_URL", "STEM_JSON_LOGS", "STEM_LOG_LEVEL", "OTEL_TRACES_EXPORTER"):
        if name not in env:
            environ.pop(name, None)
    done = subprocess.run(
        argv, cwd=root, env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def enqueue_some(app: Stem) -> dict[str, str]:
    """One job of each kind; their ids by task."""
    return {
        "chatty": app.enqueue("tests.apps.observed.chatty", ["hello"]).id,
        "fails": app.enqueue("tests.apps.observed.fails").id,
        "quiet": app.enqueue("tests.apps.observed.quiet").id,
    }


def test_a_pool_childs_logging_and_prints_reach_the_worker_log_with_the_job_id(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    ids = enqueue_some(app)
    log = burst(repo_root, redis_url, namespace).splitlines()

    said = [line for line in log if "child says hello" in line]
    printed = [line for line in log if "printed hello" in line]
    assert len(said) == 1 and len(printed) == 1, log
    assert f"job={ids['chatty']} task=tests.apps.observed.chatty" in said[0]
    assert f"job={ids['chatty']}" in printed[0]


def test_job_events_are_logged_once_each_and_a_quiet_task_says_nothing(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    ids = enqueue_some(app)
    log = burst(repo_root, redis_url, namespace).splitlines()

    def events(job_id: str) -> list[str]:
        return [line.split(": ", 1)[1] for line in log if "stem.jobs:" in line and job_id in line]

    assert [e.split(" ")[0] for e in events(ids["chatty"])] == ["started", "succeeded"]
    fails = events(ids["fails"])
    assert fails[1].startswith("failed: ValueError: always; retrying (attempt 1)")
    assert fails[-1].startswith("failed: ValueError: always; dead-lettered (max-retries)")
    assert events(ids["quiet"]) == []
    starting = next(line for line in log if "worker starting:" in line)
    assert f"namespace={namespace}" in starting and "app=tests.apps.observed:app" in starting
    assert "worker stopped" in log[-1]


def test_json_logs_are_one_object_per_line_with_the_job_fields(
    app: Stem, redis_url: str, namespace: str, repo_root: Path
) -> None:
    ids = enqueue_some(app)
    log = burst(repo_root, redis_url, namespace, "--json-logs")

    records: list[dict[str, Any]] = [json.loads(line) for line in log.splitlines()]
    base = {"ts", "level", "logger", "msg", "actor", "pid"}
    assert all(base <= set(r) for r in records)
    child = next(r for r in records if r["msg"] == "child says hello")
    assert (child["job_id"], child["task"], child["queue"]) == (
        ids["chatty"],
        "tests.apps.observed.chatty",
        "default",
    )
    assert child["logger"] == "tests.apps.observed" and child["actor"] == "worker"
    done = next(r for r in records if r["msg"].startswith("succeeded"))
    assert done["job_id"] == ids["chatty"] and done["logger"] == "stem.jobs"


def generic_text_line(actor: str, record: logging.LogRecord) -> str:
    """The line ``logging.Formatter`` makes with TextFormatter's template, tags appended."""
    line = logging.Formatter(TextFormatter.TEMPLATE.format(actor=actor), TextFormatter.DATEFMT)
    text = line.format(record)
    job_id = getattr(record, "job_id", None)
    if not job_id:
        return text
    head, sep, tail = text.partition("\n")
    task, queue = record.__dict__["task"], record.__dict__["queue"]
    return f"{head} [job={job_id} task={task} queue={queue}]{sep}{tail}"


def a_record(
    msg: str, *args: object, error: bool = False, fields: dict[str, str] | None = None
) -> logging.LogRecord:
    exc_info = None
    if error:
        try:
            raise ValueError("bad input")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("stem.jobs", logging.INFO, __file__, 1, msg, args, exc_info)
    record.__dict__.update(fields or {})
    return record


def test_the_text_line_is_what_the_generic_formatter_makes_from_the_template() -> None:
    job = {"job_id": "0192abcd", "task": "app.add", "queue": "default"}
    records = [
        a_record("succeeded in %s (waited %s)", "3 ms", "1 ms"),
        a_record("succeeded in %s (waited %s)", "3 ms", "1 ms", fields=job),
        a_record("failed", error=True, fields=job),
        a_record("two\nlines", fields=job),
        a_record("trailing newline\n", error=True),
    ]
    records[0].created += 1.0  # another second: the cached stamp must follow
    records[2].stack_info = "Stack (most recent call last):\n  here"
    for record in records + records:  # twice: the second pass uses cached stamps and text
        assert TextFormatter("worker").format(record) == generic_text_line("worker", record)


def test_a_field_passed_in_extra_wins_over_the_jobs_own() -> None:
    set_job_fields({"job_id": "job-1", "task": "app.add", "queue": "default"})
    try:
        record = a_record("hi", fields={"task": "mine"})
        assert JobFilter().filter(record)
        assert (record.job_id, record.task) == ("job-1", "mine")  # type: ignore[attr-defined]
    finally:
        set_job_fields(None)


@pytest.mark.parametrize("info_at_start", [True, False])
def test_a_job_logs_its_succeeded_line_only_if_it_logged_its_started_line(
    caplog: pytest.LogCaptureFixture, info_at_start: bool
) -> None:
    events = JobEvents()
    ctx = JobContext("job-1", "app.add", "default", attempt=0, deliveries=1, args=[], kwargs={})
    caplog.set_level(logging.INFO if info_at_start else logging.WARNING, logger="stem.jobs")
    try:
        events.before_process(ctx)
        caplog.set_level(logging.INFO, logger="stem.jobs")  # turned on while the job runs
        events.after_process(ctx, Outcome.complete("null"))
    finally:
        set_job_fields(None)
    lines = [r.getMessage().split(" ")[0] for r in caplog.records if r.name == "stem.jobs"]
    assert lines == (["started", "succeeded"] if info_at_start else [])
