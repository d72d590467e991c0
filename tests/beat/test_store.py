"""The schedule store: syncing code and file entries, CLI entries, switches, run records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stem import Stem
from stem.beat.service import Beat
from stem.beat.store import RunRecord, Schedules, Source, StoredEntry, plan_sync
from stem.errors import UsageError
from stem.schedule import Entry, Interval, load_entries_from_toml_strict
from stem.schedule.entries import ScheduleEntryError
from stem.schedule.ticks import DueTick
from tests.beat.conftest import Records


def _toml(path: Path, *tables: str) -> Path:
    path.write_text("\n".join(f"[[schedule]]\n{t}\n" for t in tables))
    return path


def test_a_beat_syncs_code_and_file_entries_and_leaves_cli_entries_alone(
    app: Stem, tmp_path: Path
) -> None:
    schedules = Schedules(app.broker)
    schedules.add(Entry("from-cli", "t.cli", Interval(60)))
    schedules.sync(Source.CODE, [Entry("gone", "t.old", Interval(5))])  # a previous deploy
    app.schedule("t.code", every_s=30, name="from-code")
    config = _toml(
        tmp_path / "stem.toml", 'name = "from-file"\ntask = "t.file"\ncron = "0 * * * *"'
    )

    assert Beat(app, config_path=config).sync() == 2

    stored = schedules.snapshot().entries
    sources = {name: s.source for name, s in stored.items()}
    assert sources == {"from-cli": Source.CLI, "from-code": Source.CODE, "from-file": Source.FILE}
    assert stored["from-code"].entry == app.schedules[0]


def test_a_switch_made_by_an_operator_survives_the_next_sync(app: Stem) -> None:
    schedules = Schedules(app.broker)
    app.schedule("t.x", every_s=10, name="x")
    Beat(app).sync()
    schedules.set_enabled("x", False)

    Beat(app).sync()

    stored = schedules.get("x")
    assert (stored.enabled, stored.entry.enabled, stored.switched) == (False, True, False)


def test_a_beat_without_a_config_file_leaves_file_entries_alone(app: Stem, tmp_path: Path) -> None:
    config = _toml(tmp_path / "stem.toml", 'name = "f"\ntask = "t.f"\nevery_s = 1')
    Beat(app, config_path=config).sync()

    Beat(app).sync()

    assert list(Schedules(app.broker).snapshot().entries) == ["f"]


def test_a_file_entry_named_like_a_code_entry_is_reported_and_left_out(
    app: Stem, tmp_path: Path, beat_log: Records
) -> None:
    app.schedule("t.code", every_s=30, name="clash")
    config = _toml(tmp_path / "stem.toml", 'name = "clash"\ntask = "t.file"\nevery_s = 1')

    Beat(app, config_path=config).sync()

    assert Schedules(app.broker).get("clash").entry.task == "t.code"
    assert [line for line in beat_log.lines(logging.ERROR) if "clash" in line] == [
        f"{config}: schedule entry 'clash': also declared in code (the code wins) (skipped)"
    ]


def test_sync_replaces_a_cli_entry_of_the_same_name_with_a_warning() -> None:
    cli_entry = StoredEntry(Entry("x", "t.cli", Interval(1)), Source.CLI).to_json()
    change = plan_sync({"x": cli_entry}, Source.CODE, [Entry("x", "t.code", Interval(1))])
    assert change.deletes == []
    assert StoredEntry.from_json("x", change.puts["x"]).source is Source.CODE
    assert change.result == [
        "schedule entry 'x': the code entry replaces the cli entry of that name"
    ]


def test_sync_writes_nothing_when_nothing_changed() -> None:
    entry = Entry("x", "t", Interval(1))
    stored = StoredEntry(entry, Source.FILE).to_json()
    change = plan_sync({"x": stored}, Source.FILE, [entry])
    assert (change.puts, change.deletes) == ({}, [])


def test_the_cli_cannot_add_over_a_code_entry_or_an_existing_name(app: Stem) -> None:
    schedules = Schedules(app.broker)
    schedules.sync(Source.CODE, [Entry("owned", "t", Interval(1))])
    schedules.add(Entry("mine", "t", Interval(1)))

    with pytest.raises(ScheduleEntryError, match="'owned': declared in code"):
        schedules.add(Entry("owned", "t", Interval(2)))
    with pytest.raises(ScheduleEntryError, match="'mine': already exists"):
        schedules.add(Entry("mine", "t", Interval(2)))
    schedules.add(Entry("mine", "t", Interval(2)), replace_existing=True)
    assert schedules.get("mine").entry.schedule == Interval(2)


def test_unknown_names_are_refused_with_the_name(app: Stem) -> None:
    schedules = Schedules(app.broker)
    for call in (schedules.get, schedules.remove, lambda n: schedules.set_enabled(n, True)):
        with pytest.raises(UsageError, match="no schedule entry named 'nope'"):
            call("nope")


def test_a_damaged_definition_is_a_bad_entry_reported_once(app: Stem) -> None:
    schedules = Schedules(app.broker)
    schedules.add(Entry("good", "t", Interval(1)))
    app.broker.client.hset(app.broker.keys.schedule, "bad", '{"v": 1, "name": "bad"}')

    first, second = schedules.snapshot(), schedules.snapshot()

    assert list(first.entries) == ["good"]
    assert [str(e) for e in first.new_errors] == ["schedule entry 'bad': missing key 'task'"]
    assert list(second.errors) == ["bad"] and second.new_errors == ()


def test_run_records_keep_the_latest_tick_and_the_newest_drifts(app: Stem) -> None:
    schedules = Schedules(app.broker)
    entry = Entry("x", "t", Interval(1))
    for tick in (1000, 3000, 2000):  # 2000 recorded late, by a slower replica
        schedules.record_tick(DueTick(entry, tick, tick), f"beat:x:{tick}", "b")
    for _ in range(120):
        schedules.record_tick(DueTick(entry, 500, 500), "beat:x:500", "b")

    record = schedules.record("x")

    assert record.last_tick_ms == 3000
    assert record.last_run is not None and record.last_run.job_id == "beat:x:3000"
    assert len(record.drifts_ms) == 100


def test_an_entry_defined_again_starts_without_the_record_of_its_removed_namesake(
    app: Stem,
) -> None:
    schedules = Schedules(app.broker)
    entry = Entry("x", "t", Interval(1))
    schedules.add(entry)
    schedules.remove("x")
    # A beat round that read "x" before the removal records its tick after it.
    schedules.record_tick(DueTick(entry, 1000, 1000), "beat:x:1000", "b")
    kept = Entry("y", "t", Interval(1))
    schedules.sync(Source.CODE, [kept])
    schedules.record_tick(DueTick(kept, 2000, 2000), "beat:y:2000", "b")

    schedules.add(entry)
    schedules.sync(Source.CODE, [Entry("y", "t", Interval(2))])  # changed, not new

    assert schedules.record("x") == RunRecord()
    assert schedules.record("y").last_tick_ms == 2000


def test_a_change_whose_run_records_cannot_be_cleared_is_made_and_says_so(app: Stem) -> None:
    # A value stem did not write where the run records live: the definitions still change.
    app.broker.client.set(app.broker.keys.schedule_state, "not a hash")
    said = Records()
    logger = logging.getLogger("stem.broker.schedule")
    logger.addHandler(said)
    try:
        Schedules(app.broker).add(Entry("x", "t", Interval(1)))
        assert app.broker.client.hexists(app.broker.keys.schedule, "x")
        Schedules(app.broker).remove("x")
        assert not app.broker.client.hexists(app.broker.keys.schedule, "x")
    finally:
        logger.removeHandler(said)
    assert [line.split(" in ")[0] for line in said.lines(logging.WARNING)] == [
        "schedule: the definitions changed, but the run records of x"
    ] * 2
    assert all("WRONGTYPE" in line for line in said.lines())


def test_a_manual_run_becomes_the_last_run_without_moving_the_last_tick(app: Stem) -> None:
    schedules = Schedules(app.broker)
    entry = Entry("x", "t", Interval(1))
    schedules.record_tick(DueTick(entry, 1000, 1000), "beat:x:1000", "b")

    schedules.record_manual("x", "j1", "cli")

    record = schedules.record("x")
    assert record.last_tick_ms == 1000
    assert record.last_run is not None
    assert (record.last_run.job_id, record.last_run.manual, record.last_run.drift_ms) == (
        "j1",
        True,
        None,
    )


def test_a_damaged_run_record_reads_as_never_run() -> None:
    assert RunRecord.from_json("{nope") == RunRecord()
    assert RunRecord.from_json('{"last_run": {"job_id": 1}}') == RunRecord()


def test_the_sample_schedules_load_and_sync_as_they_are(app: Stem, repo_root: Path) -> None:
    for name, count in (("schedule_sample.toml", 5), ("stem.toml", 1)):
        path = repo_root / "samples" / name
        assert len(load_entries_from_toml_strict(path)) == count
        assert Beat(app, config_path=path).sync() == count
