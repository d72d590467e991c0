"""Redis memory per job, queued and settled, and how fast a blocked waiter wakes.

    .venv/bin/python -m bench.memory [--jobs 20000] [--wakes 200] [--cases default,keep0,...]

For each case, ``--jobs`` jobs of one task are enqueued in bulk into a private Redis, then
fetched and settled through the broker exactly as a worker settles them (no worker
process: what is measured is the data, not the speed). Reported per job:

- ``queued B``: ``used_memory`` growth per job while queued (record, stream entry and
  the share of every table that holds them), and ``MEMORY USAGE`` of one job record;
- ``settled B``: ``used_memory`` above the empty queue per job once all are settled, and
  ``MEMORY USAGE`` of one settled record (0 when nothing is kept); ``latches``: done
  latches left (one per job before waiters registered).

Cases: ``default`` (no-op, result ``null``), ``result200`` (a 200-byte result: past
``hash-max-listpack-value``, the record is a hashtable), ``keep0`` (``keep_result_s=0``),
``dead`` (dead-lettered: the DLQ entry, which keeps the envelope, counts too).

Then the wake-up: a thread blocked in ``handle.result()`` on a job that the main thread
then settles; the time from just before the settle call to the waiter's return, p50 and
p99 over ``--wakes`` jobs. Size Redis with the settled figure: bytes x jobs/s x retention
(docs/scaling.md, "Redis memory per job").
"""

from __future__ import annotations

import argparse
import threading
import time

from bench.common import percentile, private_redis, table
from stem import Stem
from stem.broker import RedisBroker, Settlement
from stem.handle import JobHandle
from stem.outcome import Verdict

CASES = ("default", "result200", "keep0", "dead")


def _settle_all(broker: RedisBroker, verdict: Verdict, payload: str) -> None:
    while deliveries := broker.fetch("default", "bench", 500):
        broker.settle(
            [
                Settlement(d, verdict, payload, reason="not-retryable")
                if verdict is Verdict.BURY
                else Settlement(d, verdict, payload)
                for d in deliveries
            ]
        )


def _used(broker: RedisBroker) -> int:
    return int(broker.client.info("memory")["used_memory"])


def measure(url: str, case: str, jobs: int) -> list[str]:
    """One row: case, queued B/job, queued record B, settled B/job, settled record B,
    latches left."""
    ns = f"m{time.monotonic_ns()}"
    app = Stem(url, namespace=ns)
    broker = app.broker
    if case == "keep0":

        @app.task(name="bench.noop_sync", keep_result_s=0)
        def noop() -> None: ...

    app.enqueue_many("bench.noop_sync", [[0]])  # creates the stream and group
    _settle_all(broker, Verdict.COMPLETE, "null")
    broker.client.delete(*broker.client.keys(f"{ns}:*:job:*") or ["-"])
    broker.client.delete(*broker.client.keys(f"{ns}:*:done:*") or ["-"])
    base = _used(broker)
    handles = app.enqueue_many("bench.noop_sync", [[i] for i in range(jobs)])
    queued = (_used(broker) - base) / jobs
    jkey = broker.keys.queue("default").job(handles[jobs // 2].id)
    queued_rec = broker.client.memory_usage(jkey) or 0
    if case == "dead":
        _settle_all(broker, Verdict.BURY, '{"type": "ValueError", "message": "no"}')
    elif case == "result200":
        _settle_all(broker, Verdict.COMPLETE, '"' + "x" * 198 + '"')
    else:
        _settle_all(broker, Verdict.COMPLETE, "null")
    settled = (_used(broker) - base) / jobs
    settled_rec = broker.client.memory_usage(jkey) or 0
    latches = sum(1 for _ in broker.client.scan_iter(f"{ns}:*:done:*", count=1000))
    app.close()
    return [
        case,
        f"{queued:.0f}",
        str(queued_rec),
        f"{settled:.0f}",
        str(settled_rec),
        str(latches),
    ]


def wake_latency(url: str, wakes: int) -> tuple[float, float]:
    """p50 and p99 ms from the settle call to a blocked waiter's return."""
    app = Stem(url, namespace=f"w{time.monotonic_ns()}")
    samples: list[float] = []
    for _ in range(wakes):
        handle = app.enqueue("bench.noop_sync")
        woke: list[float] = []

        def wait(h: JobHandle = handle, out: list[float] = woke) -> None:
            h.result(timeout_s=30)
            out.append(time.perf_counter())

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.02)  # let it block (a bench, not a test: a miss only shortens a sample)
        [d] = app.broker.fetch("default", "bench", 1)
        start = time.perf_counter()
        app.broker.settle([Settlement(d, Verdict.COMPLETE, "null")])
        waiter.join(30)
        samples.append((woke[0] - start) * 1000)
    app.close()
    return percentile(samples, 50), percentile(samples, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--wakes", type=int, default=200)
    parser.add_argument("--cases", default=",".join(CASES))
    opts = parser.parse_args()
    with private_redis() as server:
        rows = [measure(server.url, case, opts.jobs) for case in opts.cases.split(",")]
        header = ["case", "queued B/job", "queued record", "settled B/job", "settled record"]
        print(table(rows, [*header, "latches"]))
        if opts.wakes:
            p50, p99 = wake_latency(server.url, opts.wakes)
            print(f"\nwake-up of a blocked handle.result(): p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
