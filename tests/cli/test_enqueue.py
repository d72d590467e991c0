"""``stem enqueue``: a job from the command line, and nothing at all from bad input."""

from __future__ import annotations

import json

import pytest

from stem import JobState, Stem
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


def test_a_delayed_job_waits_in_the_delayed_set(stem: Invoke, app: Stem) -> None:
    result = stem("enqueue", "t", "--delay", "3600")
    assert result.exit_code == 0, result.stderr
    stats = app.broker.queue_stats("default")
    assert (stats.ready, stats.delayed) == (0, 1)
    assert app.job(result.stdout.strip()).status() is JobState.SCHEDULED


def test_an_app_without_the_task_gets_it_enqueued_with_a_warning(stem: Invoke, app: Stem) -> None:
    result = stem("--app", "tests.apps.jobs:app", "enqueue", "no.such.task")
    assert result.exit_code == 0, result.stderr
    assert "has no task 'no.such.task'" in result.stderr
    assert app.job(result.stdout.strip()).status() is JobState.QUEUED


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
