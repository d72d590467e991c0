"""``stem result get|wait``: state and result, exit codes 0/1/4/5."""

from __future__ import annotations

import json

from stem import Stem
from tests.cli.conftest import Invoke, complete, fail, one_error_line


def _enqueue(stem: Invoke, *args: str) -> str:
    result = stem("enqueue", "t", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_get_shows_a_succeeded_job_with_its_result_and_exits_0(
    stem: Invoke, app: Stem, tty: None
) -> None:
    job_id = _enqueue(stem, "--args", "[1]")
    complete(app.broker, {"answer": 42})
    result = stem("result", "get", job_id)
    assert result.exit_code == 0, result.stderr
    assert f"id:         {job_id}" in result.stdout
    assert "state:      succeeded" in result.stdout
    assert 'result:     {"answer": 42}' in result.stdout


def test_get_in_a_pipe_is_one_line_of_the_id_and_its_fields(stem: Invoke, app: Stem) -> None:
    job_id = _enqueue(stem, "--args", "[1]")
    complete(app.broker, {"answer": 42})
    result = stem("result", "get", job_id)
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{job_id} queue=default state=succeeded reason=- task=t attempt=0 ")
    assert line.endswith(' worker=- result="{\\"answer\\": 42}"')  # not kept once settled


def test_get_json_is_the_whole_record(stem: Invoke, app: Stem) -> None:
    job_id = _enqueue(stem, "--args", "[1]", "--queue", "q2")
    queued = json.loads(stem("result", "get", job_id, "--queue", "q2", "--json").stdout)
    assert (queued["task"], queued["args"], queued["state"]) == ("t", [1], "queued")
    complete(app.broker, [1, 2], queue="q2")
    result = stem("result", "get", job_id, "--queue", "q2", "--json")
    doc = json.loads(result.stdout)
    assert (doc["id"], doc["queue"], doc["state"]) == (job_id, "q2", "succeeded")
    # A settled record keeps state, task, result and times; the arguments went with the
    # envelope (docs/scaling.md, "Redis memory per job").
    assert (doc["task"], doc["args"], doc["result"], doc["error"]) == ("t", None, [1, 2], None)
    assert doc["enqueued_ms"] <= doc["started_ms"] <= doc["ended_ms"]


def test_get_of_a_pending_job_exits_0(stem: Invoke) -> None:
    job_id = _enqueue(stem)
    result = stem("result", "get", job_id, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["state"] == "queued"


def test_get_of_a_failed_job_shows_the_error_and_exits_1(stem: Invoke, app: Stem) -> None:
    job_id = _enqueue(stem)
    fail(app.broker, message="disk full")
    result = stem("result", "get", job_id)
    assert result.exit_code == 1
    assert " state=failed reason=max-retries " in result.stdout
    assert result.stdout.endswith(' error="ValueError: disk full"\n')


def test_get_of_an_unknown_job_exits_4(stem: Invoke) -> None:
    result = stem("result", "get", "nope")
    assert result.exit_code == 4
    assert one_error_line(result) == (
        "stem: error: no job nope in any queue (never enqueued, or expired)"
    )


def test_wait_prints_the_result_of_a_succeeded_job(stem: Invoke, app: Stem) -> None:
    job_id = _enqueue(stem)
    complete(app.broker, {"answer": 42})
    result = stem("result", "wait", job_id, "--timeout", "30")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"answer": 42}


def test_wait_json_wraps_the_result(stem: Invoke, app: Stem) -> None:
    job_id = _enqueue(stem)
    complete(app.broker, None)
    result = stem("result", "wait", job_id, "--timeout", "30", "--json")
    assert json.loads(result.stdout) == {"id": job_id, "state": "succeeded", "result": None}


def test_wait_for_a_failed_job_exits_1_with_its_error_on_one_line(stem: Invoke, app: Stem) -> None:
    job_id = _enqueue(stem)
    fail(app.broker, message="disk\nfull")
    result = stem("result", "wait", job_id, "--timeout", "30")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert one_error_line(result) == (
        f"stem: error: job {job_id} failed (max-retries): ValueError: disk full"
    )


def test_wait_json_for_a_failed_job_prints_the_error_document(stem: Invoke, app: Stem) -> None:
    job_id = _enqueue(stem)
    fail(app.broker)
    result = stem("result", "wait", job_id, "--timeout", "30", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["state"], doc["error"]["type"], doc["error"]["message"]) == (
        "failed",
        "ValueError",
        "boom",
    )


def test_wait_timeout_exits_5(stem: Invoke) -> None:
    job_id = _enqueue(stem)
    result = stem("result", "wait", job_id, "--timeout", "0.2")
    assert result.exit_code == 5
    assert f"job {job_id} still queued after 0.2s" in one_error_line(result)


def test_wait_for_an_unknown_job_exits_4(stem: Invoke) -> None:
    result = stem("result", "wait", "nope", "--timeout", "1")
    assert result.exit_code == 4
    assert "no job nope" in one_error_line(result)


def test_wait_without_a_timeout_waits_the_documented_default(stem: Invoke) -> None:
    from stem.cli.result import DEFAULT_WAIT_TIMEOUT_S

    help_text = " ".join(stem("result", "wait", "--help").stdout.split())
    assert f"default: {DEFAULT_WAIT_TIMEOUT_S};" in help_text
    result = stem("result", "wait", "x")
    assert result.exit_code == 4  # no such job: answered at once, not after the default
    assert "no job x" in one_error_line(result)
