"""Enqueue throughput against the physical limit, measured in one run.

    .venv/bin/python -m bench.enqueue [--runs 5] [--single 3000] [--bulk 10000]

- single: ``app.enqueue`` one job per round trip vs bare redis-py ``XADD`` one at a time;
  target >= 0.85x (issue 17).
- bulk: ``task.enqueue_many`` of 10,000 jobs vs 10,000 bare ``XADD`` in one pipeline;
  target >= 0.6x (issue 17).
- delay lag: how late delayed jobs reach their stream (promotion by the reclaimer's loop).
Each case runs the baseline and stem alternately ``--runs`` times; prints the medians of
the rates and the median of the per-pair ratios (on a shared machine, load that shifts
between two blocks of runs would otherwise decide the ratio).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import redis
import trio

from bench.common import percentile, private_redis, rate, table
from stem import Stem


def measure(url: str, single_n: int, bulk_n: int, runs: int) -> dict[str, float]:
    raw = redis.Redis.from_url(url)
    app = Stem(url, namespace="bench")
    payload = json.dumps({"v": 1, "task": "bench.noop", "args": [1], "kwargs": {}})

    def bare_single() -> float:
        return rate(single_n, lambda: [raw.xadd("bare:s", {"e": payload}) for _ in range(single_n)])

    def stem_single() -> float:
        return rate(single_n, lambda: [app.enqueue("bench.noop", [1]) for _ in range(single_n)])

    def bare_bulk() -> float:
        def go() -> None:
            with raw.pipeline(transaction=False) as pipe:
                for _ in range(bulk_n):
                    pipe.xadd("bare:b", {"e": payload})
                pipe.execute()

        return rate(bulk_n, go)

    def stem_bulk() -> float:
        calls = [(i,) for i in range(bulk_n)]
        return rate(bulk_n, lambda: app.enqueue_many("bench.noop", calls))

    stem_single()  # warm up (script load, connections)
    out: dict[str, float] = {}
    for case, bare, ours in (("single", bare_single, stem_single), ("bulk", bare_bulk, stem_bulk)):
        pairs = [(bare(), ours()) for _ in range(runs)]  # alternating: load shifts hit both
        out[f"bare_{case}"] = statistics.median(b for b, _ in pairs)
        out[f"stem_{case}"] = statistics.median(s for _, s in pairs)
        out[f"ratio_{case}"] = statistics.median(s / b for b, s in pairs)
    raw.flushall()
    app.close()
    return out


def delay_lag_ms(url: str, n: int = 50) -> list[float]:
    """Lag between each delayed job's ETA and its promotion onto the stream."""
    from stem.reclaimer import serve_reclaimer

    app = Stem(url, namespace="lag", lease_s=30)
    lags: list[float] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve_reclaimer(
                    app, queues=["default"], task_status=task_status
                )
            )
            handles = []
            for i in range(n):
                handles.append(
                    (
                        app.enqueue("bench.noop", delay_s=0.2 + i * 0.01),
                        time.time() + 0.2 + i * 0.01,
                    )
                )
            # a job is promoted when its state leaves 'scheduled'; poll its record
            pending = dict(enumerate(handles))
            while pending:
                for i, (h, eta) in list(pending.items()):
                    if h.status().value != "scheduled":  # type: ignore[union-attr]
                        lags.append((time.time() - eta) * 1000)
                        del pending[i]
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()

    trio.run(main)
    app.close()
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--single", type=int, default=3000)
    parser.add_argument("--bulk", type=int, default=10_000)
    args = parser.parse_args()
    with private_redis() as server:
        r = measure(server.url, args.single, args.bulk, args.runs)
        lags = delay_lag_ms(server.url)
    rows = [
        (
            "single enqueue",
            f"{r['bare_single']:,.0f}/s",
            f"{r['stem_single']:,.0f}/s",
            f"{r['ratio_single']:.2f}x",
            ">= 0.85x",
        ),
        (
            f"bulk {args.bulk:,}",
            f"{r['bare_bulk']:,.0f}/s",
            f"{r['stem_bulk']:,.0f}/s",
            f"{r['ratio_bulk']:.2f}x",
            ">= 0.60x",
        ),
    ]
    print(f"redis: {server.binary}; medians of {args.runs} alternating pairs")
    print(table(rows, ("case", "bare redis-py", "stem", "ratio", "target")))
    print(
        f"\ndelayed-job lag after ETA (n={len(lags)}, includes up to 1 ms of sampling): "
        f"p50 {percentile(lags, 50):.1f} ms, p99 {percentile(lags, 99):.1f} ms, "
        f"max {max(lags):.1f} ms (target: within 100 ms)"
    )


if __name__ == "__main__":
    main()
