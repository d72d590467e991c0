"""``stem dlq list|show|replay|purge``: the dead-letter queue, round trip."""

from __future__ import annotations

import json

import pytest

import stem.cli.dlq as dlq_module
from stem import JobState, Stem
from tests.cli.conftest import Invoke, fail, keys_of, one_error_line


def _bury(stem: Invoke, app: Stem, queue: str = "default", message: str = "boom") -> str:
    result = stem("enqueue", "t", "--args", "[7]", "--queue", queue)
    assert result.exit_code == 0, result.stderr
    return fail(app.broker, queue, message)


def test_list_shows_each_entry_with_job_reason_and_error(stem: Invoke, app: Stem) -> None:
    job_id = _bury(stem, app, message="disk full")
    result = stem("dlq", "list")
    assert result.exit_code == 0, result.stderr
    [line] = result.stdout.splitlines()
    entry_id = line.split()[0]
    assert line.startswith(f"{entry_id} queue=default job_id={job_id} task=t state=failed")
    assert "reason=max-retries" in line
    assert line.endswith('error="ValueError: disk full"')


def test_list_json_spans_every_queue_and_honours_the_limit(stem: Invoke, app: Stem) -> None:
    ids = [_bury(stem, app) for _ in range(3)]
    other = _bury(stem, app, queue="other")
    docs = json.loads(stem("dlq", "list", "--json", "--limit", "2").stdout)
    assert [(d["queue"], d["job_id"]) for d in docs] == [
        ("default", ids[2]),
        ("default", ids[1]),
        ("other", other),
    ]
    assert docs[0]["envelope"]["args"] == [7]
    only = json.loads(stem("dlq", "list", "--json", "--queue", "other").stdout)
    assert [d["job_id"] for d in only] == [other]


def test_show_by_job_id_or_entry_id_prints_the_error_and_traceback(
    stem: Invoke, app: Stem, tty: None
) -> None:
    job_id = _bury(stem, app)
    by_job = stem("dlq", "show", job_id)
    assert by_job.exit_code == 0, by_job.stderr
    assert f"job:    {job_id}" in by_job.stdout
    assert "args:   [7]" in by_job.stdout
    assert "error:  ValueError: boom" in by_job.stdout
    assert "traceback:\nTraceback: x" in by_job.stdout
    entry_id = json.loads(stem("dlq", "show", job_id, "--json").stdout)["entry_id"]
    by_entry = json.loads(stem("dlq", "show", entry_id, "--queue", "default", "--json").stdout)
    assert (by_entry["job_id"], by_entry["reason"]) == (job_id, "max-retries")


def test_show_of_an_unknown_entry_exits_4(stem: Invoke, app: Stem) -> None:
    _bury(stem, app)
    result = stem("dlq", "show", "nope")
    assert result.exit_code == 4
    assert one_error_line(result) == "stem: error: no dead-letter entry nope in any queue"


def test_replay_puts_the_job_back_with_its_id(stem: Invoke, app: Stem) -> None:
    job_id = _bury(stem, app)
    result = stem("dlq", "replay", job_id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [job_id]
    assert app.job(job_id).status() is JobState.QUEUED
    assert app.broker.queue_stats("default").dead == 0
    assert json.loads(stem("dlq", "list", "--json").stdout) == []


def test_replay_all_replays_every_queue_oldest_first(stem: Invoke, app: Stem) -> None:
    ids = [_bury(stem, app) for _ in range(3)]
    other = _bury(stem, app, queue="other")
    result = stem("dlq", "replay", "--all")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [*ids, other]
    assert [app.broker.queue_stats(q).ready for q in ("default", "other")] == [3, 1]


def test_replay_with_an_unknown_id_replays_nothing_and_exits_4(stem: Invoke, app: Stem) -> None:
    job_id = _bury(stem, app)
    before = keys_of(app)
    result = stem("dlq", "replay", job_id, "nope")
    assert result.exit_code == 4
    assert "no dead-letter entry nope" in one_error_line(result)
    assert keys_of(app) == before
    assert app.job(job_id).status() is JobState.FAILED


def test_replay_needs_ids_or_all_but_not_both(stem: Invoke) -> None:
    for argv in (["dlq", "replay"], ["dlq", "replay", "x", "--all"]):
        result = stem(*argv)
        assert result.exit_code == 2
        assert "give entry or job ids, or --all (not both)" in one_error_line(result)


def test_purge_refuses_without_yes_and_deletes_nothing(stem: Invoke, app: Stem) -> None:
    _bury(stem, app)
    before = keys_of(app)
    result = stem("dlq", "purge", "--queue", "default")
    assert result.exit_code == 2
    assert "add --yes" in one_error_line(result)
    assert keys_of(app) == before


def test_purge_with_yes_empties_the_dead_letter_queues(stem: Invoke, app: Stem, tty: None) -> None:
    _bury(stem, app)
    _bury(stem, app)
    _bury(stem, app, queue="other")
    one = stem("dlq", "purge", "--queue", "other", "--yes")
    assert one.stdout == "purged 1 entry from 'other'\n"
    rest = stem("dlq", "purge", "--yes")
    assert rest.stdout.splitlines() == [
        "purged 2 entries from 'default'",
        "purged 0 entries from 'other'",
    ]
    assert stem("dlq", "list").stdout == "the dead-letter queue is empty\n"  # a terminal


def test_list_and_replay_all_page_through_more_entries_than_one_round_trip(
    stem: Invoke, app: Stem, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [_bury(stem, app) for _ in range(5)]
    monkeypatch.setattr(dlq_module, "PAGE", 2)
    docs = json.loads(stem("dlq", "list", "--json", "--limit", "100").stdout)
    replayed = stem("dlq", "replay", "--all").stdout.splitlines()
    assert [d["job_id"] for d in docs] == ids[::-1]
    assert replayed == ids
