"""How fast an idle consumer wakes for a new entry: from a thread, or on the trio thread.

    .venv/bin/python -m bench.wake [--entries 300] [--gap-ms 5] [--runs 2] [--cpu auto|off]

A separate producer process adds one stream entry every ``--gap-ms`` carrying its own
clock; the consumer, idle in between, records how late it has each entry. Two consumers,
taking turns run by run:

* ``thread``: redis-py's ``XREAD BLOCK`` in a thread, handing each entry to trio with
  ``run_sync_soon``: the way a stem worker waits today (its broker thread);
* ``trio``: the same ``XREAD BLOCK`` sent and read on the trio thread itself (a trio
  socket and a minimal RESP reader): one thread less to wake.

A measurement of the wake-up path alone, for docs/performance.md ("Latency at 200
jobs/s"); no fetch script, no job, nothing of stem's but the idea.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
import trio

from bench.common import percentile, private_redis, table
from stem.worker.cpu import parse_cpu, pin_worker

_PRODUCER = """
import redis, sys, time
r = redis.Redis.from_url(sys.argv[1])
for _ in range(int(sys.argv[3])):
    time.sleep(float(sys.argv[4]))
    r.xadd(sys.argv[2], {"t": repr(time.time())})
"""


def _produce(url: str, stream: str, entries: int, gap_s: float) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", _PRODUCER, url, stream, str(entries), str(gap_s)]
    return subprocess.Popen(argv)  # noqa: S603  (our own interpreter and code)


async def from_thread(url: str, stream: str, entries: int, gap_s: float) -> list[float]:
    """Seconds late per entry, read by a thread and handed to trio."""
    client = redis.Redis.from_url(url)
    token = trio.lowlevel.current_trio_token()
    late: list[float] = []
    done = trio.Event()

    def read() -> None:
        last: str | bytes = "$"
        seen = 0
        while seen < entries:
            reply: Any = client.xread({stream: last}, block=1000, count=1)
            if not reply:
                continue
            [(_, found)] = reply
            last, fields = found[-1]
            token.run_sync_soon(_record, late, float(fields[b"t"]))
            seen += 1
        token.run_sync_soon(done.set)

    threading.Thread(target=read, daemon=True).start()
    await trio.sleep(0.2)  # the read is blocked before the first entry
    producer = _produce(url, stream, entries, gap_s)
    await done.wait()
    producer.wait()
    client.close()
    return late


def _record(late: list[float], sent: float) -> None:
    late.append(time.time() - sent)


def _command(*parts: str) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        value = part.encode()
        out.append(b"$%d\r\n%b\r\n" % (len(value), value))
    return b"".join(out)


_ID = re.compile(rb"\r\n(\d+-\d+)\r\n")
_CLOCK = re.compile(rb"\r\n(\d+\.\d+)\r\n")


async def on_trio(url: str, stream: str, entries: int, gap_s: float) -> list[float]:
    """Seconds late per entry, read on the trio thread (one entry per reply)."""
    where = urlsplit(url)
    conn = await trio.open_tcp_stream(where.hostname or "127.0.0.1", where.port or 6379)
    late: list[float] = []
    last, producer = "$", None
    async with conn:
        while len(late) < entries:
            await conn.send_all(
                _command("XREAD", "COUNT", "1", "BLOCK", "1000", "STREAMS", stream, last)
            )
            if producer is None:
                await trio.sleep(0.2)
                producer = _produce(url, stream, entries, gap_s)
            reply = b""
            while not (reply.startswith(b"*-1") or _CLOCK.search(reply)):
                reply += await conn.receive_some(65536)
            if reply.startswith(b"*-1"):
                continue
            now = time.time()
            id_found, clock = _ID.search(reply), _CLOCK.search(reply)
            if id_found is None or clock is None:
                raise RuntimeError(f"unexpected reply: {reply!r}")
            last = id_found[1].decode()
            late.append(now - float(clock[1]))
    if producer is not None:
        producer.wait()
    return late


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cpu", default="auto", help="pin as `stem worker --cpu` does")
    args = parser.parse_args()
    ways = {"thread": from_thread, "trio": on_trio}
    late: dict[str, list[float]] = {name: [] for name in ways}
    with private_redis() as server:
        placed = pin_worker(parse_cpu(args.cpu))
        for run in range(args.runs):
            for name, way in ways.items():
                found = trio.run(way, server.url, f"{name}{run}", args.entries, args.gap_ms / 1000)
                late[name] += found[20:]  # the first ones wake a cold process
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cpu: {placed}; load average: {load}; an entry every {args.gap_ms:g} ms")
    rows = []
    for name, values in late.items():
        ms = sorted(v * 1000 for v in values)
        rows.append(
            [
                name,
                f"{percentile(ms, 50):.3f}",
                f"{percentile(ms, 90):.3f}",
                f"{statistics.mean(ms):.3f}",
                str(len(ms)),
            ]
        )
    print(table(rows, ["consumer", "p50 ms", "p90 ms", "mean ms", "n"]))


if __name__ == "__main__":
    main()
