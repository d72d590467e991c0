"""Beat drift: how late a tick is enqueued after its fire time, with one beat, unloaded.

    .venv/bin/python -m bench.beat_drift [--every 0.25] [--ticks 60] [--runs 3]

One beat (``serve_beat`` in this process) on a private embedded Redis fires an interval
entry; the drift of each tick is what the beat records in the schedule store (server
clock at the record, minus the tick's fire time), so it includes the thread hop, the
store read, the enqueue round trip and the record script. The baseline, measured in the
same run, is a bare ``trio.sleep`` loop waking at the same wall-clock ticks: the part of
the drift that is the event loop's timer and the machine, not beat. Target: median drift
<= 50 ms. Prints per-run medians, then the median of runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import trio

from bench.common import percentile, private_redis, table
from stem import Stem
from stem.beat.service import serve_beat
from stem.beat.store import Schedules

WARMUP_TICKS = 3  # the first ticks load scripts and open connections


async def timer_lateness(every_s: float, ticks: int) -> list[float]:
    """Lateness (ms) of ``trio.sleep`` waking at each wall-clock tick of the interval."""
    out: list[float] = []
    for _ in range(ticks):
        now = time.time()
        tick = (now // every_s + 1) * every_s
        await trio.sleep(tick - now)
        out.append((time.time() - tick) * 1000)
    return out


async def beat_drifts(url: str, namespace: str, every_s: float, ticks: int) -> list[float]:
    """Drifts (ms) of ``ticks`` ticks fired by one beat, after a short warm-up."""
    app = Stem(url, namespace=namespace)
    app.schedule("bench.noop", every_s=every_s, name="drift")
    schedules = Schedules(app.broker)
    wanted = WARMUP_TICKS + ticks
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_beat, app, name="bench"))
        while len((await trio.to_thread.run_sync(schedules.record, "drift")).drifts_ms) < wanted:
            await trio.sleep(every_s)
        nursery.cancel_scope.cancel()
    drifts = schedules.record("drift").drifts_ms
    app.close()
    return [float(d) for d in drifts[WARMUP_TICKS:wanted]]


def summary(label: str, values: list[float]) -> list[str]:
    return [
        label,
        str(len(values)),
        f"{statistics.median(values):.1f}",
        f"{percentile(values, 90):.1f}",
        f"{percentile(values, 99):.1f}",
        f"{max(values):.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=0.25, help="interval in seconds")
    parser.add_argument("--ticks", type=int, default=60, help="ticks measured per run")
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    header = ["run", "ticks", "median ms", "p90 ms", "p99 ms", "max ms"]
    rows: list[list[str]] = []
    medians: list[float] = []
    p99s: list[float] = []
    with private_redis() as redis_server:
        for run in range(opts.runs):
            base = trio.run(timer_lateness, opts.every, opts.ticks)
            drift = trio.run(beat_drifts, redis_server.url, f"bench{run}", opts.every, opts.ticks)
            rows.append(summary(f"{run + 1}: trio.sleep baseline", base))
            rows.append(summary(f"{run + 1}: beat drift", drift))
            medians.append(statistics.median(drift))
            p99s.append(percentile(drift, 99))
    print(f"one beat, interval {opts.every:g} s, {opts.ticks} ticks per run, embedded Redis")
    print(table(rows, header))
    print(
        f"median of runs: drift median {statistics.median(medians):.1f} ms, "
        f"p99 {statistics.median(p99s):.1f} ms (target: median <= 50 ms)"
    )


if __name__ == "__main__":
    main()
