"""Worker drain rate with 1 ms added round-trip time, beside the rate without it.

    .venv/bin/python -m bench.rtt [--jobs 5000] [--runs 3] [--latency-ms 1] [--prefetch auto 10]

A private redis-server, and the project's Toxiproxy-compatible proxy (``chaos.proxy``,
driven through the ``toxiproxy-python`` client like the chaos suite) in front of it with
a latency toxic on the replies. A ping loop first shows what the toxic adds per round
trip (the proxy's own hop is measured too: it is a Python process). Then the drain of
``bench.worker`` (one worker process at its defaults, concurrency 10, prefetch auto; or
at each ``--prefetch`` given, interleaved) runs
directly and through the proxy, interleaved, ``--runs`` pairs: no-op async jobs and the
peers benchmark's job (one blocking ``INCR``, on the same link as the worker). Each pair
gives a ratio (with / without the latency); the table has their median. Issue 17's
target: >= 0.50x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from toxiproxy.proxy import Proxy

from bench.common import private_redis, table
from bench.peers.job import URL_ENV
from bench.worker import drain
from chaos.stack.toxi import client_for, open_toxiproxy

CASES = (("no-op async", "bench.noop_async", 1), ("one INCR (peers' job)", "bench.incr", 4))


@contextmanager
def latency_proxy(redis_port: int, latency_ms: int) -> Iterator[tuple[Proxy, str]]:
    """A proxy in front of ``redis_port`` with a ``latency_ms`` latency toxic on replies
    (no jitter); yields it and its ``redis://`` URL."""
    with open_toxiproxy() as api:
        proxy = client_for(api).create(
            name=f"rtt-{time.monotonic_ns()}",
            listen="127.0.0.1:0",
            upstream=f"127.0.0.1:{redis_port}",
        )
        proxy.add_toxic(
            name="rtt",
            type="latency",
            stream="downstream",
            attributes={"latency": latency_ms, "jitter": 0},
        )
        host, port = proxy.listen.rsplit(":", 1)
        try:
            yield proxy, f"redis://{host}:{port}/0"
        finally:
            proxy.destroy()


def ping_ms(url: str, n: int = 300) -> float:
    """Median milliseconds of one ``PING`` round trip (after a warm-up)."""
    r = redis.Redis.from_url(url)
    for _ in range(20):
        r.ping()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        r.ping()
        times.append((time.perf_counter() - start) * 1000)
    r.close()
    return statistics.median(times)


def round_trips(url: str, jobs: int) -> float:
    """Round trips to Redis per job of one in-process worker at its defaults draining
    ``jobs`` no-op jobs over ``url`` (burst): redis-py sends a command, or a whole
    pipeline, with one ``send_packed_command``; those are counted, minus the
    enqueue's. A count, so it does not swing with the machine's load."""
    import trio
    from redis.connection import Connection

    from stem import Stem
    from stem.worker.core import Worker, WorkerOptions

    app = Stem(url, namespace=f"t{time.monotonic_ns()}")
    app.task(name="bench.noop_async")(_noop)
    app.enqueue_many("bench.noop_async", [() for _ in range(jobs)])
    cls: Any = Connection  # patched for the count: the Any boundary
    real = cls.send_packed_command
    sent = [0]

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        sent[0] += 1
        real(self, *args, **kwargs)

    cls.send_packed_command = counting
    try:
        trio.run(Worker(app, WorkerOptions(burst=True)).serve)
    finally:
        cls.send_packed_command = real
        app.close()
    return sent[0] / jobs


async def _noop() -> None:
    return None


def run_drain(url: str, task: str, jobs: int, prefetch: str | None = None) -> float:
    """jobs/s of one worker process at its defaults (or ``prefetch``), every call on
    ``url``."""
    os.environ[URL_ENV] = url  # the INCR job's own Redis calls take the same link
    return drain(url, task, jobs, 1, [] if prefetch is None else ["--prefetch", prefetch])[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=1)
    parser.add_argument(
        "--prefetch", nargs="+", help="worker --prefetch values to compare (default: its own)"
    )
    args = parser.parse_args()

    rows = []
    with private_redis() as server, latency_proxy(server.port, args.latency_ms) as (proxy, url):
        direct = ping_ms(server.url)
        toxic = ping_ms(url)
        proxy.destroy_toxic("rtt")
        bare = ping_ms(url)
        proxy.add_toxic(
            name="rtt",
            type="latency",
            stream="downstream",
            attributes={"latency": args.latency_ms, "jitter": 0},
        )
        print(
            f"PING round trip, median: direct {direct:.3f} ms; through the proxy "
            f"{bare:.3f} ms without the toxic, {toxic:.3f} ms with it "
            f"(+{toxic - bare:.3f} ms per round trip from the toxic)"
        )
        trips = round_trips(url, args.jobs // 5)
        print(f"round trips to Redis per job (no-op async, in-process, +RTT): {trips:.2f}")
        settings: list[str | None] = args.prefetch or [None]
        for label, task, divide in CASES:
            jobs = args.jobs // divide
            runs: dict[str | None, list[tuple[float, float]]] = {p: [] for p in settings}
            for _ in range(args.runs):  # interleaved: without, with; setting by setting
                for p in settings:
                    without = run_drain(server.url, task, jobs, p)
                    runs[p].append((without, run_drain(url, task, jobs, p)))
            for p, pairs in runs.items():
                ratios = [w / wo for wo, w in pairs]
                at = "" if p is None else f", --prefetch {p}"
                rows.append(
                    (
                        f"{label}, {jobs:,} jobs{at}",
                        f"{statistics.median(x[0] for x in pairs):,.0f}/s",
                        f"{statistics.median(x[1] for x in pairs):,.0f}/s",
                        f"{statistics.median(ratios):.2f}x",
                        " ".join(f"{r:.2f}" for r in ratios),
                    )
                )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = ("drain, 1 worker at defaults", "direct", f"+{args.latency_ms} ms RTT")
    print(table(rows, (*header, "ratio (median)", "each pair")))


if __name__ == "__main__":
    main()
