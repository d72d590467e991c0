"""A beat in this process (``serve_beat``) on the real clock and a real Redis."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest
import trio
from click.testing import Result

from stem import Stem
from stem.beat.service import Beat, idempotency_ttl_s, last_fired_by, run, serve_beat
from stem.beat.store import Schedules
from stem.errors import ConfigError
from stem.middleware.base import Middleware, OutgoingJob
from stem.schedule import Entry, Interval
from stem.schedule.ticks import DueTick, fire_at_ms
from tests.beat.conftest import Records
from tests.beat.running import job_ids, now_ms, ticks, wait_for

FAST = 0.1  # re-read the store every 100 ms, so tests wait less


async def _rounds(beat: Beat, n: int) -> None:
    """Wait until ``beat`` has started and finished ``n`` more rounds."""
    target = beat.statistics().rounds + n
    await wait_for(lambda: beat.statistics().rounds >= target)


async def test_cli_add_disable_enable_and_remove_reach_a_running_beat(
    app: Stem, cli: Callable[..., Result]
) -> None:
    async with trio.open_nursery() as nursery:
        beat: Beat = await nursery.start(partial(serve_beat, app, reload_s=FAST))
        assert cli("add", "tick", "t.tick", "--every", "0.2").exit_code == 0
        await wait_for(lambda: len(ticks(app, "tick")) >= 2)

        assert cli("disable", "tick").exit_code == 0
        await _rounds(beat, 2)  # a round that read the store before the switch is over
        fired = ticks(app, "tick")
        await _rounds(beat, 5)  # > 2 periods
        assert ticks(app, "tick") == fired

        assert cli("enable", "tick").exit_code == 0
        await wait_for(lambda: len(ticks(app, "tick")) >= len(fired) + 2)

        assert cli("remove", "tick").exit_code == 0
        await _rounds(beat, 2)
        fired = ticks(app, "tick")
        await _rounds(beat, 5)
        assert ticks(app, "tick") == fired
        nursery.cancel_scope.cancel()

    # Defined again, the entry starts fresh: no catch-up from the removed one's ticks (a
    # round that read it before the removal may have recorded one after it).
    assert cli("add", "tick", "t.tick", "--every", "0.2").exit_code == 0
    assert Schedules(app.broker).record("tick").last_run is None


async def test_two_beats_in_one_process_enqueue_each_tick_once(app: Stem) -> None:
    app.schedule("t.tick", every_s=0.1, name="fast")
    async with trio.open_nursery() as nursery:
        one: Beat = await nursery.start(partial(serve_beat, app, name="one", reload_s=FAST))
        two: Beat = await nursery.start(partial(serve_beat, app, name="two", reload_s=FAST))
        await wait_for(lambda: len(ticks(app, "fast")) >= 20)
        nursery.cancel_scope.cancel()
    fired = ticks(app, "fast")
    assert [b - a for a, b in pairwise(fired)] == [100] * (len(fired) - 1)
    won = one.statistics().fired + two.statistics().fired
    assert won == len(fired)


async def test_each_tick_records_its_drift_and_the_last_run(app: Stem) -> None:
    app.schedule("t.tick", every_s=0.2, name="drifty", jitter_s=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_beat, app, name="b1", reload_s=FAST))
        await wait_for(lambda: len(ticks(app, "drifty")) >= 5)
        nursery.cancel_scope.cancel()

    record = Schedules(app.broker).record("drifty")
    last = record.last_run
    assert last is not None and last.tick_ms is not None and last.drift_ms is not None
    entry = app.schedules[0]
    assert last.fired_at_ms - fire_at_ms(entry, last.tick_ms) == last.drift_ms
    assert (last.job_id, last.by, last.manual) == (entry.job_id(last.tick_ms), "b1", False)
    assert record.last_tick_ms == last.tick_ms == ticks(app, "drifty")[-1]
    assert len(record.drifts_ms) == len(ticks(app, "drifty"))
    assert all(-50 <= d <= 5000 for d in record.drifts_ms), record.drifts_ms


async def test_a_new_entry_fires_from_now_on_not_its_whole_grace_window(app: Stem) -> None:
    app.schedule("t.tick", every_s=0.1, name="new", grace_s=30)
    started = now_ms()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_beat, app, reload_s=FAST))
        await wait_for(lambda: len(ticks(app, "new")) >= 3)
        nursery.cancel_scope.cancel()
    assert ticks(app, "new")[0] > started - 100


async def test_a_beat_starting_late_fires_only_the_ticks_after_the_recorded_one(
    app: Stem,
) -> None:
    entry = app.schedule("t.tick", every_s=1, name="resumed")
    last_tick = (now_ms() - 3000) // 1000 * 1000
    Beat(app).sync()
    Schedules(app.broker).record_tick(DueTick(entry, last_tick, last_tick), "x", "earlier")
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_beat, app, reload_s=FAST))
        await wait_for(lambda: len(ticks(app, "resumed")) >= 3)
        nursery.cancel_scope.cancel()
    # Ticks still within the grace window are caught up; the recorded one is not redone.
    assert ticks(app, "resumed")[:3] == [last_tick + 1000, last_tick + 2000, last_tick + 3000]


async def test_a_bad_stored_entry_is_reported_once_and_the_others_keep_firing(
    app: Stem, beat_log: Records
) -> None:
    Schedules(app.broker).add(Entry("healthy", "t.ok", Interval(0.1)))
    app.broker.client.hset(app.broker.keys.schedule, "broken", '{"v": 1, "name": "broken"}')
    async with trio.open_nursery() as nursery:
        beat: Beat = await nursery.start(partial(serve_beat, app, reload_s=FAST))
        await wait_for(lambda: len(ticks(app, "healthy")) >= 5 and beat.statistics().rounds >= 5)
        nursery.cancel_scope.cancel()
    assert [line for line in beat_log.lines() if "broken" in line] == [
        "schedule entry 'broken': missing key 'task' (skipped)"
    ]
    assert beat.statistics().bad_entries == 1


async def test_an_entry_that_cannot_be_enqueued_is_reported_once_and_skipped(
    app: Stem, beat_log: Records
) -> None:
    schedules = Schedules(app.broker)
    schedules.add(Entry("healthy", "t.ok", Interval(0.1)))
    schedules.add(Entry("refused", "t.no", Interval(0.1)))
    app.middleware.append(_RefuseTask("t.no"))
    async with trio.open_nursery() as nursery:
        beat: Beat = await nursery.start(partial(serve_beat, app, reload_s=FAST))
        await wait_for(lambda: len(ticks(app, "healthy")) >= 5 and beat.statistics().failed >= 3)
        nursery.cancel_scope.cancel()
    lines = [line for line in beat_log.lines(logging.ERROR) if "refused" in line]
    assert lines == ["schedule entry 'refused': cannot enqueue: no t.no here (skipped)"]
    assert not any(j.startswith("beat:refused:") for j in job_ids(app))


def test_the_per_tick_key_outlives_any_window_in_which_a_replica_could_fire_the_tick() -> None:
    assert idempotency_ttl_s(Entry("a", "t", Interval(1)), 0) == 86_400
    assert idempotency_ttl_s(Entry("a", "t", Interval(86_400)), 0) == 864_000
    assert idempotency_ttl_s(Entry("a", "t", Interval(1), grace_s=10_000), 0) == 100_000


def test_last_fired_by_skips_ticks_whose_jittered_fire_time_is_still_ahead() -> None:
    entry = Entry("j", "t", Interval(1), jitter_s=0.9)
    tick = 1_000_000
    fire = fire_at_ms(entry, tick)
    assert fire > tick  # this tick's jitter is not zero
    assert last_fired_by(entry, fire) == tick
    assert last_fired_by(entry, fire - 1) == tick - 1000


class _RefuseTask(Middleware):
    """Refuses to enqueue one task (stands in for any error an enqueue can raise)."""

    def __init__(self, task: str) -> None:
        self.task = task

    def before_enqueue(self, job: OutgoingJob) -> None:
        if job.task == self.task:
            raise ConfigError(f"no {self.task} here")


def test_a_config_file_that_cannot_be_read_stops_beat_before_it_starts(
    app: Stem, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        run(app, config_path=tmp_path / "missing.toml")
    broken = tmp_path / "stem.toml"
    broken.write_text("[[schedule]\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        run(app, config_path=broken)


async def test_a_beat_that_cannot_sync_at_start_keeps_telling_its_supervisor_it_is_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis goes away between the actor's wait for it and beat's first sync: beat retries
    # the sync, and must touch the heartbeat file meanwhile, or its supervisor takes the
    # outage for a hang and restarts it.
    from stem.embedded import free_port

    heartbeat = tmp_path / "beat.heartbeat"
    monkeypatch.setenv("SUPERVISOR_HEARTBEAT_FILE", str(heartbeat))
    app = Stem(f"redis://127.0.0.1:{free_port()}/0", namespace="gone")  # nothing listens
    app.schedule("t.tick", every_s=1, name="unsynced")  # the sync has something to write
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(serve_beat, app, reload_s=FAST))
        await wait_for(heartbeat.exists, timeout_s=20)
        nursery.cancel_scope.cancel()
    app.close()
