"""One actor cut off from Redis while its peers carry on: a beat replica, the reclaimer.
Each cut-off actor has its own proxy, so the fault reaches it alone."""

from __future__ import annotations

import itertools
import signal
import time

from chaos.beat_app import ENTRY, EVERY_S
from chaos.checker import Verdict, count_keys, judge, wait_settled
from chaos.scenarios import Options, scenario
from chaos.scenarios.flow import blackhole, finish, hold, probe, start_keys, wait_running
from chaos.stack import Stack, wait_for

TICK_PREFIX = f"beat:{ENTRY}:"


@scenario(
    "beat-cutoff",
    "three beat replicas fire a 1 s schedule; one is black-holed for a while, then heals",
    "every tick is enqueued and run exactly once: no gap while a replica is cut off, no "
    "second run when it comes back and fires what it missed",
)
def beat_cutoff(stack: Stack, opts: Options, verdict: Verdict) -> None:
    links = [stack.proxy(f"beat{i}") for i in range(3)]
    work = stack.proxy("work")
    beats = [stack.beat(link, f"beat-{i}") for i, link in enumerate(links)]
    worker = stack.worker(work, "worker")
    reclaimer = stack.reclaimer(work)
    keys_before = count_keys(stack)
    wait_running(stack, 2)
    with blackhole(links[0]):
        hold(opts.hold(10.0, 4.0))
    hold(opts.hold(3.0, 2.0))  # the healed replica catches up with its missed ticks
    for beat in beats:
        beat.signal(signal.SIGTERM)
    wait_for(lambda: not any(b.alive() for b in beats), 20.0, "the beats to stop")
    ticks = sorted({int(j.removeprefix(TICK_PREFIX)) for j in _tick_ids(stack)})
    ids = [f"{TICK_PREFIX}{t}" for t in ticks]
    gaps = [(a, b) for a, b in itertools.pairwise(ticks) if b - a != EVERY_S * 1000]
    if gaps:
        verdict.problems.append(f"{len(gaps)} gap(s) between ticks, first {gaps[0]}")
    verdict.notes.append(f"{len(ticks)} ticks from {ticks[0] if ticks else '-'}")
    states = wait_settled(stack, ids, 30.0)
    judge(stack, verdict, ids, states, keys_before)
    for actor in (worker, reclaimer):
        if not actor.alive():
            verdict.problems.append(f"{actor.name} exited")
    for beat in beats:
        if beat.proc is not None and beat.proc.returncode not in (0, None):
            verdict.problems.append(f"{beat.name} exited {beat.proc.returncode} on SIGTERM")


def _tick_ids(stack: Stack) -> list[str]:
    """Tick job ids known to Redis (records) or the ledger."""
    client = stack.redis.client()
    pattern = f"{stack.namespace}:*job:{TICK_PREFIX}*"
    in_redis = [
        k.decode().rsplit("job:", 1)[1] for k in client.scan_iter(match=pattern, count=1000)
    ]
    return in_redis + [j for j in stack.ledger.runs() if j.startswith(TICK_PREFIX)]


@scenario(
    "reclaimer-cutoff",
    "the reclaimer black-holed while a worker is SIGKILLed (4 s lease); it heals later",
    "a reclaimer that was cut off hands the dead worker's jobs back once it reaches Redis",
    lease_s=4.0,
)
def reclaimer_cutoff(stack: Stack, opts: Options, verdict: Verdict) -> None:
    work, rec = stack.proxy("work"), stack.proxy("reclaimer")
    doomed = stack.worker(work, "doomed", "--concurrency", "5", "--prefetch", "5")
    reclaimer = stack.reclaimer(rec, interval_s=0.2)
    keys_before = start_keys(stack)
    producer = stack.producer(work, opts.load(150, 50), rate_per_s=20, seconds=0.5).start()
    wait_running(stack, 5)
    rescuer = stack.worker(work, "rescuer")
    with blackhole(rec):
        doomed.signal(signal.SIGKILL, group=True)
        hold(opts.hold(3 * stack.lease_s, stack.lease_s + 2.0))
    healed = time.monotonic()
    verdict.allowed_duplicates = 5  # what the killed worker was running
    ids = probe(stack, work, verdict, healed, count=4)
    producer.join()
    finish(stack, verdict, producer.sent, keys_before, ids, alive=[rescuer, reclaimer])
    log = reclaimer.log()
    if "handed back" not in log:
        verdict.problems.append("the reclaimer never logged handing jobs back")
