"""Faults on the link between the actors and Redis: latency, resets, black holes,
bandwidth starvation, slicing. Every actor and the producer go through one proxy."""

from __future__ import annotations

import signal
import time
from typing import Any

from toxiproxy.proxy import Proxy

from chaos.checker import Verdict
from chaos.scenarios import Options, scenario
from chaos.scenarios.flow import blackhole, finish, hold, probe, start_keys, toxic, wait_running
from chaos.stack import Actor, Stack, wait_for
from chaos.stack.producer import TASK
from stem.states import JobState
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
    total, fault_s = opts.load(400, 120), opts.hold(10.0, 3.0)
    # Production spans the fault: jobs are enqueued before, during and after it.
    rate = total / (fault_s + 2.0)
    producer = stack.producer(link, total, rate_per_s=rate, seconds=job_s).start()
    wait_running(stack, 5)
    with toxic(link, type_, attributes, streams):
        hold(fault_s)
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


FAR_CONCURRENCY, FAR_PREFETCH = 5, 5


@scenario(
    "blackhole-long",
    "one worker's link black-holed for longer than the lease (4 s) while another worker "
    "and the reclaimer stay connected",
    "a long partition costs duplicates (at most what the cut-off worker held) but no job, "
    "and the cut-off worker does not hang on its half-open sockets",
    lease_s=4.0,
)
def blackhole_long(stack: Stack, opts: Options, verdict: Verdict) -> None:
    far_link, near_link = stack.proxy("far"), stack.proxy("near")
    options = ("--concurrency", str(FAR_CONCURRENCY), "--prefetch", str(FAR_PREFETCH))
    far = stack.worker(far_link, "far", *options)
    near = stack.worker(near_link, "near")
    reclaimer = stack.reclaimer(near_link, interval_s=0.2)
    keys_before = start_keys(stack)
    producer = stack.producer(near_link, opts.load(200, 60), rate_per_s=20, seconds=1.0).start()
    wait_running(stack, 10)
    verdict.allowed_duplicates = FAR_CONCURRENCY + FAR_PREFETCH
    with blackhole(far_link):
        hold(opts.hold(3 * stack.lease_s, stack.lease_s + 2.0))
    healed = time.monotonic()
    ids = probe(stack, near_link, verdict, healed, count=4)
    producer.join()
    finish(stack, verdict, producer.sent, keys_before, ids, alive=[far, near, reclaimer])
    _far_works_again(stack, far_link, near, verdict)


def _far_works_again(stack: Stack, link: Proxy, near: Actor, verdict: Verdict) -> None:
    """With the near worker paused (it holds nothing now), new jobs need the far worker:
    it must not be stuck on a socket that went half-open in the partition."""
    near.signal(signal.SIGSTOP)
    try:
        app = stack.app(link)
        handles = [app.enqueue(TASK, (0.0,)) for _ in range(3)]
        took = wait_for(
            lambda: all(h.status() is JobState.SUCCEEDED for h in handles),
            timeout_s=45.0,
            what="the far worker to run new jobs after the partition",
        )
        verdict.notes.append(f"far worker ran new jobs within {took:.1f} s")
    except TimeoutError as exc:
        verdict.problems.append(str(exc))
    finally:
        near.signal(signal.SIGCONT)
