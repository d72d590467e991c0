"""``stem schedule ...`` on a real Redis, invoked as the root CLI would (``ctx.obj.app``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from stem import Stem
from stem.beat.store import Schedules, Source
from stem.cli.actors import beat
from stem.cli.schedule import schedule
from stem.errors import ConfigError, UsageError
from stem.schedule import Entry, Interval
from stem.schedule.ticks import DueTick
from stem.schedule.wallclock import to_ms
from tests.beat.running import job_ids, now_ms

Cli = Callable[..., Result]


def _ok(result: Result) -> str:
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    return result.output


def _fired_once(app: Stem, name: str, every_s: float) -> int:
    """Record a tick of ``name`` fired just now (as a beat would); return the tick."""
    entry = Schedules(app.broker).get(name).entry
    tick = now_ms() // round(every_s * 1000) * round(every_s * 1000)
    Schedules(app.broker).record_tick(DueTick(entry, tick, tick), entry.job_id(tick), "beat-x")
    return tick


def test_show_prints_the_next_five_fire_times_and_the_last_run_with_its_drift(
    app: Stem, cli: Cli
) -> None:
    _ok(cli("add", "minutely", "t.report", "--every", "60", "--kwargs", '{"fmt": "pdf"}'))
    tick = _fired_once(app, "minutely", 60)
    before = now_ms()

    out = _ok(cli("show", "minutely"))

    lines = out.splitlines()
    assert "task:     t.report" in lines
    assert 'kwargs:   {"fmt": "pdf"}' in lines
    start = lines.index("next 5 fire times:")
    fires = [
        to_ms(datetime.fromisoformat(line.split()[0])) for line in lines[start + 1 : start + 6]
    ]
    first = (before // 60_000 + 1) * 60_000
    assert fires == [first + i * 60_000 for i in range(5)]
    [last] = [line for line in lines if line.startswith("last run:")]
    assert f"job beat:minutely:{tick}" in last and "by beat-x" in last
    assert " drift " in last and last.split(" drift ")[1].split()[0].lstrip("-").isdigit()


def test_show_json_has_the_definition_the_next_fire_times_and_the_run_record(
    app: Stem, cli: Cli
) -> None:
    _ok(cli("add", "x", "t.x", "--cron", "0 3 * * *", "--tz", "Europe/Berlin", "--jitter", "5"))
    tick = _fired_once(app, "x", 1)

    doc = json.loads(_ok(cli("show", "x", "--json")))

    assert doc["entry"]["cron"] == "0 3 * * *" and doc["entry"]["tz"] == "Europe/Berlin"
    assert (doc["source"], doc["enabled"], doc["last_tick_ms"]) == ("cli", True, tick)
    assert len(doc["next_fire_ms"]) == 5 and doc["next_fire_ms"] == sorted(doc["next_fire_ms"])
    assert doc["last_run"]["job_id"] == f"beat:x:{tick}"
    assert doc["drifts_ms"] == [doc["last_run"]["drift_ms"]]


def test_show_of_an_unknown_entry_is_a_usage_error_naming_it(cli: Cli) -> None:
    result = cli("show", "nope")
    assert isinstance(result.exception, UsageError)
    assert str(result.exception) == "no schedule entry named 'nope'"


def test_list_shows_every_entry_and_bad_ones_apart(app: Stem, cli: Cli) -> None:
    _ok(cli("add", "a", "t.a", "--every", "5"))
    _ok(cli("add", "b", "t.b", "--cron", "*/10 * * * * *", "--disabled"))
    app.broker.client.hset(app.broker.keys.schedule, "c", "{")

    table = _ok(cli("list")).splitlines()
    docs = json.loads(_ok(cli("list", "--json")))

    assert table[0].split()[:4] == ["NAME", "SOURCE", "ENABLED", "SCHEDULE"]
    assert [line.split()[:3] for line in table[1:3]] == [["a", "cli", "yes"], ["b", "cli", "no"]]
    assert "bad: schedule entry 'c': stored entry is not valid JSON" in table[3]
    assert [d["name"] for d in docs] == ["a", "b", "c"]
    assert docs[1]["enabled"] is False and "error" in docs[2]


def test_run_enqueues_the_task_now_and_records_a_manual_run(app: Stem, cli: Cli) -> None:
    _ok(cli("add", "nightly", "t.report", "--cron", "0 3 * * *", "--args", "[1, 2]"))

    doc = json.loads(_ok(cli("run", "nightly", "--json")))

    assert job_ids(app) == [doc["job_id"]]
    record = app.broker.job("default", doc["job_id"])
    assert record is not None and json.loads(record.envelope)["args"] == [1, 2]
    run = Schedules(app.broker).record("nightly")
    assert run.last_run is not None and (run.last_run.job_id, run.last_run.manual) == (
        doc["job_id"],
        True,
    )
    assert run.last_tick_ms is None


def test_add_refuses_a_bad_entry_with_its_name_and_the_problem(cli: Cli) -> None:
    result = cli("add", "bad", "t.x", "--cron", "61 * * * *")
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("schedule entry 'bad': invalid cron expression")
    result = cli("add", "bad", "t.x", "--every", "1", "--args", "{nope")
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("--args is not valid JSON")
    result = cli("add", "bad", "t.x")
    assert isinstance(result.exception, ConfigError)
    assert "give exactly one of 'every_s', 'cron' or 'at'" in str(result.exception)


def test_removing_a_code_entry_warns_that_a_beat_will_add_it_back(app: Stem, cli: Cli) -> None:
    Schedules(app.broker).sync(Source.CODE, [Entry("coded", "t", Interval(1))])
    result = cli("remove", "coded")
    assert result.exit_code == 0
    assert "declared in code; the next beat that starts adds it again" in result.output


def test_check_reports_each_bad_entry_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "stem.toml"
    path.write_text(
        '[[schedule]]\nname = "ok"\ntask = "t"\nevery_s = 1\n'
        '[[schedule]]\nname = "typo"\ntask = "t"\nevry_s = 1\n'
    )
    result = CliRunner().invoke(schedule, ["check", str(path)])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == f"{path}: 1 bad schedule entry"
    assert "schedule entry 'typo': unknown key 'evry_s' (did you mean 'every_s'?)" in result.output


@pytest.mark.parametrize("args", [["--help"], *([c, "--help"] for c in schedule.commands)])
def test_every_schedule_command_has_help_with_an_example(args: list[str]) -> None:
    out = _ok(CliRunner().invoke(schedule, args))
    assert "Example" in out and "stem schedule" in out


def test_beat_has_help_with_an_example(app: Stem) -> None:
    out = _ok(CliRunner().invoke(beat, ["--help"], obj=SimpleNamespace(app=app)))
    assert "Example" in out and "beat --config stem.toml" in out
