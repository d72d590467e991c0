"""``stem queue`` in process: a pause shows in ``observe queues``; drain's progress line."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Invoke


def test_observe_queues_shows_a_paused_queue(stem: Invoke) -> None:
    stem("enqueue", "t")
    stem("enqueue", "t", "--queue", "other")
    assert stem("queue", "pause", "default").exit_code == 0

    plain = stem("observe", "queues")
    as_json = stem("observe", "queues", "--json")

    assert plain.stdout.splitlines() == [
        "default ready=1 delayed=0 pending=0 dead=0 paused=yes throttled=0 limiter=-",
        "other ready=1 delayed=0 pending=0 dead=0 paused=no throttled=0 limiter=-",
    ]
    assert [q["paused"] for q in json.loads(as_json.stdout)] == [True, False]


@pytest.mark.usefixtures("tty")
def test_drain_on_a_terminal_shows_a_progress_line_and_exits_5_at_its_timeout(
    stem: Invoke,
) -> None:
    stem("enqueue", "t")
    stem("enqueue", "t", "--delay", "3600")

    result = stem("queue", "drain", "default", "--timeout", "0.6")

    assert result.exit_code == 5
    assert result.stdout.startswith("\rdraining default: ready=1 delayed=1 running=0 (")
    assert result.stdout.endswith("\n")  # the progress line is ended before the error
    assert result.stderr == "stem: error: queue default still has 2 job(s) after 0.6s\n"


def test_drain_in_a_pipe_prints_no_progress_only_the_error(stem: Invoke) -> None:
    stem("enqueue", "t")

    result = stem("queue", "drain", "default", "--timeout", "0.2")

    assert (result.exit_code, result.stdout) == (5, "")
    assert result.stderr == "stem: error: queue default still has 1 job(s) after 0.2s\n"
