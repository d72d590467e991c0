"""Beat replicas as real processes: each tick once, a killed replica costs at most one tick,
a bad entry in stem.toml is reported in one line while the good ones fire."""

from __future__ import annotations

import os
import signal
import subprocess
from itertools import pairwise
from pathlib import Path

from stem import Stem
from stem.beat.store import Schedules
from tests.beat.running import log_text, now_ms, start_beat, stop, ticks, wait_until

Procs = list[subprocess.Popen[bytes]]


def _start(
    n: int, redis_url: str, namespace: str, root: Path, tmp_path: Path, config: Path, procs: Procs
) -> list[Path]:
    logs = [tmp_path / f"beat-{i}.log" for i in range(n)]
    for i, log in enumerate(logs):
        procs.append(start_beat(redis_url, namespace, root, log, config=config, name=f"beat-{i}"))
    wait_until(
        lambda: all("started:" in log_text(log) for log in logs),
        timeout_s=60,
        what="every beat to start",
    )
    return logs


def _alive(procs: Procs) -> bool:
    dead = [p.args for p in procs if p.poll() is not None]
    assert dead == [], f"a beat exited early: {dead}"
    return True


def test_three_beats_enqueue_each_tick_of_a_one_second_entry_exactly_once(
    app: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    config = tmp_path / "stem.toml"
    config.write_text('[[schedule]]\nname = "every-second"\ntask = "t.tick"\nevery_s = 1\n')
    logs = _start(3, redis_url, namespace, repo_root, tmp_path, config, procs)
    start = now_ms()
    wait_until(lambda: _alive(procs) and now_ms() >= start + 20_000, timeout_s=40)
    end = now_ms()
    # Let the tick due at `end` be fired before stopping (it is due at once; generous).
    wait_until(lambda: max(ticks(app, "every-second"), default=0) >= end // 1000 * 1000)
    assert stop(procs) == [0, 0, 0]

    fired = ticks(app, "every-second")
    assert len(fired) == len(set(fired)), "a tick was enqueued twice"
    in_window = [t for t in fired if start < t <= end]
    assert abs(len(in_window) - 20) <= 1
    assert [b - a for a, b in pairwise(fired)] == [1000] * (len(fired) - 1)
    # Exactly one replica won each tick: the wins they logged add up to the jobs.
    wins = sum(log_text(log).count("every-second: fired beat:") for log in logs)
    assert wins == len(fired)


def test_when_the_beat_doing_the_work_is_killed_the_others_go_on_with_at_most_one_tick_missed(
    app: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    every_ms = 500
    config = tmp_path / "stem.toml"
    config.write_text('[[schedule]]\nname = "pulse"\ntask = "t.tick"\nevery_s = 0.5\n')
    _start(3, redis_url, namespace, repo_root, tmp_path, config, procs)
    schedules = Schedules(app.broker)
    wait_until(lambda: len(ticks(app, "pulse")) >= 4, what="a few ticks")

    last = schedules.record("pulse").last_run
    assert last is not None
    victim = procs[int(last.by.removeprefix("beat-"))]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = now_ms()
    survivors = [p for p in procs if p is not victim]
    wait_until(
        lambda: _alive(survivors) and max(ticks(app, "pulse")) >= killed_at + 3000,
        what="the survivors to fire for 3 s",
    )
    assert stop(survivors) == [0, 0]

    fired = ticks(app, "pulse")
    assert len(fired) == len(set(fired))
    gaps = [b - a for a, b in pairwise(fired)]
    assert max(gaps) <= 2 * every_ms, f"more than one tick missed: gaps {gaps}"
    assert min(gaps) == every_ms


def test_a_bad_entry_in_stem_toml_is_named_in_one_log_line_and_the_good_ones_fire(
    app: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    config = tmp_path / "stem.toml"
    config.write_text(
        '[[schedule]]\nname = "good-one"\ntask = "t.a"\nevery_s = 0.5\n\n'
        '[[schedule]]\nname = "broken-cron"\ntask = "t.b"\ncron = "61 * * * *"\n\n'
        '[[schedule]]\nname = "good-two"\ntask = "t.c"\nevery_s = 0.5\njitter_s = 0.2\n'
    )
    [log] = _start(1, redis_url, namespace, repo_root, tmp_path, config, procs)
    wait_until(
        lambda: _alive(procs) and len(ticks(app, "good-one")) >= 3 and ticks(app, "good-two"),
        what="both good entries to fire",
    )
    assert stop(procs) == [0]

    mentions = [line for line in log_text(log).splitlines() if "broken-cron" in line]
    assert len(mentions) == 1, mentions
    assert "ERROR" in mentions[0]
    assert "invalid cron expression" in mentions[0] or "61" in mentions[0]
    assert ticks(app, "broken-cron") == []


def test_stem_beat_through_the_cli_fires_and_stops_cleanly_on_sigterm(
    app: Stem, redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    config = tmp_path / "stem.toml"
    config.write_text('[[schedule]]\nname = "cli-beat"\ntask = "t.tick"\nevery_s = 0.2\n')
    log = tmp_path / "beat.log"
    procs.append(
        start_beat(
            redis_url, namespace, repo_root, log, config=config, name="via-cli", through_cli=True
        )
    )
    wait_until(lambda: _alive(procs) and len(ticks(app, "cli-beat")) >= 3, what="ticks")
    assert stop(procs) == [0]
    assert "via-cli started:" in log_text(log)
