"""The soak's fault cycle: the scenarios' faults, each switched on, held, then switched off.

A :class:`Fault` has a ``begin`` and an ``end`` (neither blocks for the hold: the soak's
loop keeps sampling while a fault is on) and a duplicate budget, the reruns it may
explain (the same budgets as the scenario it comes from, ``docs/guides/chaos.md``):

=================  ============================================================  ======
fault              what                                                          budget
=================  ============================================================  ======
``latency-50ms``   50 ms ± 10 ms on every reply, 5 s                             0
``reset-peer``     every connection reset on its next bytes (upstream), 3 s      0
``blackhole``      half-open partition (``timeout`` 0), 1 s under the            0
                   survivable partition (5 s at the 12 s lease)
``worker-kill``    one of the supervisor's workers SIGKILLed (it restarts it)    c + p
``redis-restart``  Redis SIGTERMed (AOF everysec), down 1 s, started again       0
=================  ============================================================  ======

``c + p`` is the killed worker's concurrency plus prefetch: what it held. The Redis
restart is a clean one (SIGTERM): with ``appendfsync everysec`` a SIGKILL may lose the
last second of writes, which Redis documents (``docs/guides/operations.md``), so it is not
a fault the soak can judge "nothing lost" under.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil
from toxiproxy.proxy import Proxy

from chaos.stack import Stack
from stem.worker.lease import LeaseTiming

#: Per worker, as in the process scenarios: what a SIGKILL may cost in reruns.
CONCURRENCY, PREFETCH = 5, 5


@dataclass
class Target:
    """What the faults act on: the stack, the proxy every actor uses, the workers now."""

    stack: Stack
    link: Proxy
    workers: Callable[[], list[psutil.Process]]
    kills: int = 0


@dataclass(frozen=True)
class Fault:
    """One fault of the cycle; ``begin``/``end`` switch it on and off without blocking."""

    name: str
    hold_s: float
    begin: Callable[[Target], None]
    end: Callable[[Target], None]
    budget: int = 0


def _toxic(
    type_: str, attributes: dict[str, Any], streams: tuple[str, ...]
) -> tuple[Callable[[Target], None], Callable[[Target], None]]:
    def begin(t: Target) -> None:
        for stream in streams:
            t.link.add_toxic(
                name=f"soak_{type_}_{stream}", type=type_, stream=stream, attributes=attributes
            )

    def end(t: Target) -> None:
        for stream in streams:
            t.link.destroy_toxic(f"soak_{type_}_{stream}")

    return begin, end


def _kill_worker(t: Target) -> None:
    workers = sorted(t.workers(), key=lambda p: p.pid)
    if workers:
        # Alternate between the replicas, so both live through restarts over a long run.
        workers[t.kills % len(workers)].send_signal(signal.SIGKILL)
        t.kills += 1


def _nothing(t: Target) -> None:
    return None


def _redis_down(t: Target) -> None:
    t.stack.redis.stop(signal.SIGTERM)


def _redis_up(t: Target) -> None:
    t.stack.redis.start()


def cycle(lease_s: float) -> list[Fault]:
    """The faults in the order the soak injects them, again and again."""
    blackhole_s = LeaseTiming(lease_s).survivable_partition_s - 1.0
    return [
        Fault(
            "latency-50ms",
            5.0,
            *_toxic("latency", {"latency": 50, "jitter": 10}, ("downstream",)),
        ),
        Fault("reset-peer", 3.0, *_toxic("reset_peer", {"timeout": 0}, ("upstream",))),
        Fault(
            "blackhole",
            blackhole_s,
            *_toxic("timeout", {"timeout": 0}, ("upstream", "downstream")),
        ),
        Fault("worker-kill", 2.0, _kill_worker, _nothing, budget=CONCURRENCY + PREFETCH),
        Fault("redis-restart", 1.0, _redis_down, _redis_up),
    ]
