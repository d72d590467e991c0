"""Faults on the link between the actors and Redis: latency, resets, black holes,
bandwidth starvation, slicing. Every actor and the producer go through one proxy."""

from __future__ import annotations

import time
from typing import Any

from chaos.checker import Verdict
from chaos.scenarios import Options, scenario
from chaos.scenarios.flow import blackhole, finish, hold, probe, start_keys, toxic, wait_running
from chaos.stack import Stack
from stem.worker.lease import LeaseTiming

WORKERS = 2


def _under_fault(
    stack: Stack,
    opts: Options,
    verdict: Verdict,
    type_: str,
    attributes: dict[str, Any],
    *,
    streams: tuple[str, ...] = ("downstream",),
    job_s: float = 0.2,
) -> None:
    """Supervise 2 workers + reclaimer through one proxy; produce; fault mid-drain."""
    link = stack.proxy("redis")
    sup = stack.supervise(link, "--workers", str(WORKERS))
    keys_before = start_keys(stack)
    total = opts.load(400, 120)
    producer = stack.producer(link, total, rate_per_s=total / 4, seconds=job_s).start()
    wait_running(stack, 5)
    with toxic(link, type_, attributes, streams):
        hold(opts.hold(10.0, 3.0))
    ids = probe(stack, link, verdict, time.monotonic(), count=2 * WORKERS)
    producer.join()
    finish(stack, verdict, producer.sent, keys_before, ids, alive=[sup])


for _ms in (1, 50, 200):

    def _latency(stack: Stack, opts: Options, verdict: Verdict, ms: int = _ms) -> None:
        _under_fault(stack, opts, verdict, "latency", {"latency": ms, "jitter": max(1, ms // 5)})

    scenario(
        f"latency-{_ms}ms",
        f"{_ms} ms ± {max(1, _ms // 5)} ms latency on every reply while producing and draining",
        "a slow network costs no job and no duplicate",
    )(_latency)


@scenario(
    "reset-peer",
    "every connection is reset (RST) on its next bytes, for a while, mid-drain",
    "resets are retried: no job lost, none run twice, actors stay up",
)
def reset_peer(stack: Stack, opts: Options, verdict: Verdict) -> None:
    _under_fault(stack, opts, verdict, "reset_peer", {"timeout": 0}, streams=("upstream",))


@scenario(
    "blackhole-short",
    "a half-open partition (timeout toxic 0) shorter than the survivable partition (6 s "
    "at a 12 s lease) while workers hold jobs",
    "a partition shorter than the stated bound costs no lease: zero duplicates",
)
def blackhole_short(stack: Stack, opts: Options, verdict: Verdict) -> None:
    timing = LeaseTiming(stack.lease_s)
    outage_s = min(
        opts.hold(timing.survivable_partition_s - 1.0, 4.0), timing.survivable_partition_s - 0.5
    )
    link = stack.proxy("redis")
    sup = stack.supervise(link, "--workers", str(WORKERS))
    keys_before = start_keys(stack)
    producer = stack.producer(link, opts.load(200, 60), rate_per_s=30, seconds=1.0).start()
    wait_running(stack, 10)
    with blackhole(link):
        hold(outage_s)
    ids = probe(stack, link, verdict, time.monotonic(), count=2 * WORKERS)
    producer.join()
    finish(stack, verdict, producer.sent, keys_before, ids, alive=[sup])


@scenario(
    "bandwidth",
    "the link starved to 1 KB/s each way mid-drain",
    "starvation slows stem down but loses and duplicates nothing",
)
def bandwidth(stack: Stack, opts: Options, verdict: Verdict) -> None:
    _under_fault(stack, opts, verdict, "bandwidth", {"rate": 1}, streams=("upstream", "downstream"))


@scenario(
    "slicer",
    "every chunk cut into 1-16 byte pieces 50 µs apart, both ways",
    "RESP parsing copes with arbitrary fragmentation",
)
def slicer(stack: Stack, opts: Options, verdict: Verdict) -> None:
    attributes = {"average_size": 8, "size_variation": 7, "delay": 50}
    _under_fault(stack, opts, verdict, "slicer", attributes, streams=("upstream", "downstream"))
