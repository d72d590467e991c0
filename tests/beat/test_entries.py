"""Entries: validation with one-line errors, derived job ids, the JSON round trip."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stem.errors import ConfigError
from stem.schedule import (
    Cron,
    Entry,
    Interval,
    MissedPolicy,
    Once,
    ScheduleEntryError,
    job_id_for_tick,
)

from .helpers import local, utc


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ScheduleEntryError) as caught:
        Entry.from_dict(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_unknown_time_zone_is_refused_naming_the_entry_and_the_zone() -> None:
    message = refusal({"name": "nightly", "task": "t", "cron": "0 3 * * *", "tz": "Mars/Base"})

    assert message == "schedule entry 'nightly': unknown time zone 'Mars/Base'"


def test_an_unparseable_cron_expression_is_refused_naming_the_entry() -> None:
    message = refusal({"name": "nightly", "task": "t", "cron": "0 3 * *"})

    assert message == (
        "schedule entry 'nightly': cron expression '0 3 * *' has 4 fields; "
        "expected 5 (minute hour day month weekday) or 6 (second first)"
    )


def test_a_cron_field_out_of_range_is_refused_naming_the_entry() -> None:
    message = refusal({"name": "nightly", "task": "t", "cron": "0 25 * * *"})

    assert message == "schedule entry 'nightly': invalid cron expression '0 25 * * *': out of range"


@pytest.mark.parametrize("every_s", [0, -1, 0.0])
def test_a_non_positive_interval_is_refused_naming_the_entry(every_s: float) -> None:
    message = refusal({"name": "tick", "task": "t", "every_s": every_s})

    assert message == f"schedule entry 'tick': interval must be positive, got {every_s!r}"


def test_an_error_from_code_also_names_the_entry() -> None:
    with pytest.raises(ScheduleEntryError) as caught:
        Entry(name="tick", task="t", schedule=Interval(5), priority=11)

    assert str(caught.value) == (
        "schedule entry 'tick': priority must be an integer from 0 to 9, got 11"
    )
    assert (caught.value.name, caught.value.problem) == (
        "tick",
        "priority must be an integer from 0 to 9, got 11",
    )


def test_a_schedule_entry_error_is_a_config_error() -> None:
    assert issubclass(ScheduleEntryError, ConfigError)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"name": "has space"}, "invalid name: use 1-200 letters, digits, '_', '.', ':' or '-'"),
        ({"name": "{tag}"}, "invalid name: use 1-200 letters, digits, '_', '.', ':' or '-'"),
        ({"task": ""}, "task must be a non-empty string, got ''"),
        ({"queue": "a b"}, "invalid queue 'a b': use 1-200 letters, digits, '_', '.', ':' or '-'"),
        ({"jitter_s": -1}, "jitter_s must be zero or more, got -1"),
        ({"grace_s": 0}, "grace_s must be positive, got 0"),
        ({"enabled": "yes"}, "enabled must be true or false, got 'yes'"),
        ({"args": "x"}, "args must be a list, got 'x'"),
        ({"kwargs": {"when": utc(2024)}}, "args and kwargs must be JSON values: "),
        ({"priority": True}, "priority must be an integer from 0 to 9, got True"),
    ],
)
def test_bad_entry_options_are_refused_with_the_problem(
    options: dict[str, Any], problem: str
) -> None:
    data: dict[str, Any] = {"name": "job", "task": "t", "every_s": 60, **options}

    assert refusal(data).split(": ", 1)[1].startswith(problem)


def test_job_ids_are_derived_from_the_entry_name_and_tick() -> None:
    entry = Entry(name="nightly", task="t", schedule=Cron("0 3 * * *"))

    assert entry.job_id(1714532400000) == "beat:nightly:1714532400000"
    assert job_id_for_tick("nightly", 1714532400000) == "beat:nightly:1714532400000"


def test_job_ids_hold_no_characters_that_break_redis_keys() -> None:
    job_id = job_id_for_tick("reports.daily:eu-west_1", 1714532400000)

    assert re.fullmatch(r"[A-Za-z0-9_.:\-]+", job_id) is not None


def test_a_job_id_for_an_invalid_name_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"invalid entry name 'a\{b\}'"):
        job_id_for_tick("a{b}", 0)


ENTRIES = [
    Entry(name="plain", task="app.ping", schedule=Interval(30)),
    Entry(
        name="anchored",
        task="app.sync",
        schedule=Interval(2.5, start_at=local("Europe/Berlin", 2024, 6, 1, 9)),
        args=(1, "two", [3]),
        kwargs={"dry_run": True, "limits": {"max": 5}},
        queue="sync",
        priority=7,
        jitter_s=1.5,
        enabled=False,
        missed=MissedPolicy.RUN_ONCE,
        grace_s=30,
    ),
    Entry(name="nightly", task="app.report", schedule=Cron("30 2 * * *", tz="America/New_York")),
    Entry(name="seconds", task="app.poll", schedule=Cron("*/10 * * * * *"), jitter_s=2),
    Entry(name="launch", task="app.launch", schedule=Once(local("Asia/Tokyo", 2025, 1, 1, 9))),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_an_entry_survives_a_json_round_trip(entry: Entry) -> None:
    assert Entry.from_json(entry.to_json()) == entry


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_an_entry_survives_a_round_trip_through_its_mapping(entry: Entry) -> None:
    assert Entry.from_dict(entry.to_dict()) == entry


def test_a_one_off_keeps_its_instant_through_json() -> None:
    entry = Entry(name="launch", task="t", schedule=Once(local("Asia/Tokyo", 2025, 1, 1, 9)))
    decoded = Entry.from_json(entry.to_json())

    assert isinstance(decoded.schedule, Once)
    assert isinstance(entry.schedule, Once)
    assert decoded.schedule.at_ms == entry.schedule.at_ms


def test_stored_json_with_an_unknown_version_is_refused() -> None:
    text = Entry(name="plain", task="t", schedule=Interval(5)).to_json().replace('"v":1', '"v":9')

    with pytest.raises(ScheduleEntryError, match="'plain': unsupported JSON version 9"):
        Entry.from_json(text)


def test_stored_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(ScheduleEntryError, match="not valid JSON"):
        Entry.from_json("{not json")


def test_entries_are_hashable_by_name() -> None:
    entry = Entry(name="plain", task="t", schedule=Interval(5), kwargs={"a": 1})

    assert {entry: 1}[Entry.from_json(entry.to_json())] == 1
