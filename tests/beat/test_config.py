"""Schedule entries from stem.toml: good entries load, each bad one is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from stem.errors import ConfigError
from stem.schedule import (
    Cron,
    Entry,
    Interval,
    MissedPolicy,
    Once,
    load_entries_from_toml,
    load_entries_from_toml_strict,
)

from .helpers import utc

MIXED = """
[app]
name = "other sections of stem.toml are not the schedule's business"

[[schedule]]
name = "heartbeat"
task = "ops.ping"
every_s = 30

[[schedule]]
name = "nightly"
task = "reports.nightly"
cron = "0 3 * * *"
tz = "Mars/Base"

[[schedule]]
name = "typo"
task = "ops.ping"
every_s = 60
queu = "fast"

[[schedule]]
name = "report"
task = "reports.daily"
cron = "30 2 * * *"
tz = "Europe/Berlin"
args = [1, "a"]
kwargs = { format = "pdf" }
queue = "reports"
priority = 3
jitter_s = 60
missed = "run_once"
grace_s = 30

[[schedule]]
name = "launch"
task = "app.launch"
at = 2025-01-01T09:00:00+01:00
enabled = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stem.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_entries_load_and_each_bad_entry_yields_one_error(tmp_path: Path) -> None:
    entries, errors = load_entries_from_toml(write(tmp_path, MIXED))

    assert [e.name for e in entries] == ["heartbeat", "report", "launch"]
    assert [str(e) for e in errors] == [
        "schedule entry 'nightly': unknown time zone 'Mars/Base'",
        "schedule entry 'typo': unknown key 'queu' (did you mean 'queue'?)",
    ]


def test_a_toml_entry_equals_the_same_entry_written_in_code(tmp_path: Path) -> None:
    entries, _ = load_entries_from_toml(write(tmp_path, MIXED))

    assert entries == [
        Entry(name="heartbeat", task="ops.ping", schedule=Interval(30)),
        Entry(
            name="report",
            task="reports.daily",
            schedule=Cron("30 2 * * *", tz="Europe/Berlin"),
            args=(1, "a"),
            kwargs={"format": "pdf"},
            queue="reports",
            priority=3,
            jitter_s=60,
            missed=MissedPolicy.RUN_ONCE,
            grace_s=30,
        ),
        Entry(name="launch", task="app.launch", schedule=Once(utc(2025, 1, 1, 8)), enabled=False),
    ]


def test_the_strict_loader_raises_the_first_bad_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_entries_from_toml_strict(write(tmp_path, MIXED))

    assert str(caught.value) == "schedule entry 'nightly': unknown time zone 'Mars/Base'"


def test_the_strict_loader_returns_the_entries_of_a_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[[schedule]]\nname = "a"\ntask = "t"\nevery_s = 1\n')

    assert load_entries_from_toml_strict(path) == [Entry(name="a", task="t", schedule=Interval(1))]


def test_a_file_without_a_schedule_has_no_entries(tmp_path: Path) -> None:
    assert load_entries_from_toml(write(tmp_path, '[app]\nname = "x"\n')) == ([], [])


def test_an_unknown_key_without_a_close_match_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[[schedule]]\nname = "a"\ntask = "t"\nevery_s = 1\ncolour = "red"\n')

    _, errors = load_entries_from_toml(path)

    assert [str(e) for e in errors] == ["schedule entry 'a': unknown key 'colour'"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('task = "t"\nevery_s = 1', "schedule entry #1: missing key 'name'"),
        ('name = "a"\nevery_s = 1', "schedule entry 'a': missing key 'task'"),
        (
            'name = "a"\ntask = "t"',
            "schedule entry 'a': give exactly one of 'every_s', 'cron' or 'at'",
        ),
        (
            'name = "a"\ntask = "t"\nevery_s = 1\ncron = "* * * * *"',
            "schedule entry 'a': give exactly one of 'every_s', 'cron' or 'at' "
            "(got 'every_s' and 'cron')",
        ),
        (
            'name = "a"\ntask = "t"\nevery_s = 1\ntz = "UTC"',
            "schedule entry 'a': 'tz' only applies to 'cron' entries",
        ),
        (
            'name = "a"\ntask = "t"\nat = 2025-01-01T09:00:00',
            "schedule entry 'a': at needs a UTC offset, "
            "e.g. 2025-01-01T09:00:00+01:00 or 2025-01-01T09:00:00Z",
        ),
        (
            'name = "a"\ntask = "t"\nevery_s = "5m"',
            "schedule entry 'a': interval must be a number, got '5m'",
        ),
        (
            'name = "a"\ntask = "t"\nevery_s = 5\nmissed = "all"',
            "schedule entry 'a': missed must be 'skip' or 'run_once', got 'all'",
        ),
        (
            'name = "a"\ntask = "t"\ncron = "H 3 * * *"',
            "schedule entry 'a': cron expression 'H 3 * * *': hashed (H) and random (R) fields "
            "are not supported because every beat replica must compute the same ticks; "
            "use jitter_s",
        ),
    ],
)
def test_a_bad_entry_is_reported_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    entries, errors = load_entries_from_toml(write(tmp_path, f"[[schedule]]\n{body}\n"))

    assert (entries, [str(e) for e in errors]) == ([], [message])


def test_a_repeated_name_is_refused_after_its_first_use(tmp_path: Path) -> None:
    table = '[[schedule]]\nname = "a"\ntask = "t{}"\nevery_s = 1\n'
    path = write(tmp_path, table.format(1) + table.format(2))

    entries, errors = load_entries_from_toml(path)

    assert [e.task for e in entries] == ["t1"]
    assert [str(e) for e in errors] == [
        "schedule entry 'a': duplicate name (entry #2; first defined by entry #1)"
    ]


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*nope\.toml: No such file"):
        load_entries_from_toml(tmp_path / "nope.toml")


def test_a_file_that_is_not_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"stem\.toml: invalid TOML"):
        load_entries_from_toml(write(tmp_path, "[[schedule]\n"))


def test_a_schedule_that_is_not_an_array_of_tables_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'schedule' must be an array of tables"):
        load_entries_from_toml(write(tmp_path, '[schedule]\nname = "a"\n'))
