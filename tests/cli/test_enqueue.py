"""``stem enqueue``: a job from the command line, and nothing at all from bad input."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import Result

from stem import JobState, Stem
from stem.broker import Settlement
from stem.outcome import Verdict
from tests.cli.conftest import Invoke, keys_of, one_error_line


def test_enqueue_prints_the_id_of_a_job_that_now_exists(stem: Invoke, app: Stem) -> None:
    result = stem("enqueue", "some.task", "--args", "[1, 2]", "--kwargs", '{"x": "y"}')
    assert result.exit_code == 0, result.stderr
    job_id = result.stdout.strip()
    record = app.job(job_id).info()
    assert record is not None
    envelope = json.loads(record.envelope)
    assert (record.queue, record.state) == ("default", JobState.QUEUED)
    assert (envelope["task"], envelope["args"], envelope["kwargs"]) == (
        "some.task",
        [1, 2],
        {"x": "y"},
    )


def test_enqueue_json_names_the_queue_and_whether_the_job_was_created(
    stem: Invoke, app: Stem
) -> None:
    argv = ["enqueue", "t", "--queue", "high", "--priority", "9", "--idempotency-key", "k1"]
    first = stem(*argv, "--json")
    again = stem(*argv, "--json")
    doc, repeat = json.loads(first.stdout), json.loads(again.stdout)
    assert (doc["queue"], doc["created"]) == ("high", True)
    assert (repeat["id"], repeat["created"]) == (doc["id"], False)
    assert "not enqueued again" in again.stderr
    assert app.broker.queue_stats("high").ready == 1


def test_keep_result_0_leaves_nothing_of_the_job_once_it_settled(stem: Invoke, app: Stem) -> None:
    job_id = stem("enqueue", "t", "--keep-result", "0").stdout.strip()
    [d] = app.broker.fetch("default", "w", 1)
    app.broker.settle([Settlement(d, Verdict.COMPLETE, "1")])
    assert app.job(job_id, "default").info() is None
    assert stem("enqueue", "t", "--keep-result", "-1").exit_code == 2


def test_a_delayed_job_waits_in_the_delayed_set(stem: Invoke, app: Stem) -> None:
    result = stem("enqueue", "t", "--delay", "3600")
    assert result.exit_code == 0, result.stderr
    stats = app.broker.queue_stats("default")
    assert (stats.ready, stats.delayed) == (0, 1)
    assert app.job(result.stdout.strip()).status() is JobState.SCHEDULED


def test_an_app_without_the_task_refuses_it_with_the_closest_name_and_writes_nothing(
    stem: Invoke, app: Stem
) -> None:
    stem("enqueue", "t")
    before = keys_of(app)
    result = stem("--app", "tests.apps.jobs:app", "enqueue", "tests.apps.jobs.ad")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "the app has no task 'tests.apps.jobs.ad'; did you mean 'tests.apps.jobs.add'" in line
    assert "--force" in line
    assert result.stdout == ""
    assert keys_of(app) == before


def test_force_enqueues_a_task_name_the_app_does_not_know(stem: Invoke, app: Stem) -> None:
    result = stem("--app", "tests.apps.jobs:app", "enqueue", "no.such.task", "--force")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert app.job(result.stdout.strip()).status() is JobState.QUEUED


def test_without_an_app_any_task_name_is_enqueued(stem: Invoke, app: Stem) -> None:
    result = stem("enqueue", "no.such.task")
    assert result.exit_code == 0, result.stderr
    assert app.job(result.stdout.strip()).status() is JobState.QUEUED


def test_eta_job_id_and_headers_arrive_in_the_job(stem: Invoke, app: Stem) -> None:
    job_id = "01b8dac5b4009f3c2a7e5d1b8c460e27"
    result = stem(
        "enqueue", "t", "--eta", "2031-01-01T09:00:00+02:00", "--job-id", job_id,
        "--header", "tenant=acme", "--header", "note=a=b",
    )  # fmt: skip
    assert (result.exit_code, result.stdout.strip()) == (0, job_id), result.stderr
    record = app.job(job_id).info()
    assert record is not None
    assert (record.state, record.eta_ms) == (JobState.SCHEDULED, 1925017200000)
    assert record.headers == {"tenant": "acme", "note": "a=b"}


def test_the_same_job_id_twice_is_enqueued_once_with_a_note(stem: Invoke, app: Stem) -> None:
    first = stem("enqueue", "t", "--job-id", "job-1")
    again = stem("enqueue", "t", "--job-id", "job-1", "--json")
    assert (first.stdout.strip(), json.loads(again.stdout)["created"]) == ("job-1", False)
    assert "not enqueued again" in again.stderr
    assert app.broker.queue_stats("default").ready == 1


def test_wait_prints_the_result_once_a_worker_settles_the_job(stem: Invoke, app: Stem) -> None:
    box: list[Result] = []
    waiter = threading.Thread(
        target=lambda: box.append(stem("enqueue", "t", "--wait", "--timeout", "30"))
    )
    waiter.start()
    broker = app.broker
    while not (taken := broker.fetch("default", "test-worker", 1)):
        broker.wait_ready(["default"], 1000)  # woken by the CLI's enqueue
    broker.settle([Settlement(taken[0], Verdict.COMPLETE, json.dumps({"sum": 3}))])
    waiter.join(timeout=30)
    [result] = box
    assert (result.exit_code, json.loads(result.stdout)) == (0, {"sum": 3}), result.stderr


def test_wait_times_out_with_exit_5_as_result_wait_does(stem: Invoke) -> None:
    result = stem("enqueue", "t", "--wait", "--timeout", "0")
    assert result.exit_code == 5
    assert "still queued after 0.0s" in one_error_line(result)


def test_malformed_args_json_exits_2_with_one_line_and_writes_nothing(
    stem: Invoke, app: Stem
) -> None:
    stem("enqueue", "t")  # the namespace exists, so "unchanged" compares something
    before = keys_of(app)
    result = stem("enqueue", "t", "--args", "[1, 2")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("stem: error: --args is not valid JSON: ")
    assert result.stdout == ""
    assert keys_of(app) == before


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--args", '{"a": 1}', "--args must be a JSON array, got dict"),
        ("--args", "3", "--args must be a JSON array, got int"),
        ("--kwargs", "[1]", "--kwargs must be a JSON object, got list"),
        ("--kwargs", "{nope}", "--kwargs is not valid JSON"),
        ("--queue", "bad queue", "invalid queue name 'bad queue'"),
        ("--priority", "10", "'--priority': 10 is not in the range 0<=x<=9"),
        ("--delay", "-1", "'--delay': -1.0 is not in the range x>=0"),
        ("--idempotency-key", "a\nb", "idempotency_key must be 1-512 characters"),
        ("--eta", "2030-01-01T09:00:00", "needs a UTC offset"),
        ("--eta", "tomorrow", "is not an ISO 8601 time"),
        ("--header", "novalue", "expected KEY=VALUE"),
        ("--job-id", "a b", "invalid job id"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    stem: Invoke, app: Stem, option: str, value: str, message: str
) -> None:
    stem("enqueue", "t")
    before = keys_of(app)
    result = stem("enqueue", "t", option, value)
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert keys_of(app) == before


def test_json_arguments_arrive_exactly_as_parsed(stem: Invoke, app: Stem) -> None:
    result = stem("enqueue", "t", "--args", '["\\u00e9t\\u00e9", null, 1.5]')
    assert result.exit_code == 0, result.stderr
    record = app.job(result.stdout.strip()).info()
    assert record is not None
    assert json.loads(record.envelope)["args"] == ["été", None, 1.5]


def test_an_empty_task_name_is_refused(stem: Invoke) -> None:
    result = stem("enqueue", " ")
    assert result.exit_code == 2
    assert "TASK must not be empty" in one_error_line(result)


@pytest.mark.parametrize("delay", ["inf", "nan", "1e30", "315360001"])
def test_a_delay_beyond_ten_years_exits_2_with_one_line_and_writes_nothing(
    stem: Invoke, app: Stem, delay: str
) -> None:
    before = keys_of(app)
    result = stem("enqueue", "t", "--delay", delay)
    assert result.exit_code == 2
    assert "delay_s must be a number from 0 to 315360000" in one_error_line(result)
    assert keys_of(app) == before
