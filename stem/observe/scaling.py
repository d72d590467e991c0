"""How many workers a load needs: arithmetic over two samples, for ``stem observe scaling``.

Pure: the CLI samples queue depths and the workers' heartbeat counters ``window_s`` apart
and passes the numbers in; nothing here touches Redis or a clock, so the advice is tested
on synthetic inputs (``tests/observe/test_scaling.py``). docs/slo.md explains its use.

The model, deliberately simple (it advises, it does not autoscale):

- arrivals per second = completions per second + the backlog's growth per second;
- one worker's capacity = its measured completions per second divided by how busy it was
  (running / concurrency): a half-busy worker could do about twice as much;
- workers needed = (arrivals x (1 + headroom) + backlog / drain_s) / capacity, rounded up:
  keep up with arrivals with headroom, and clear today's backlog within ``drain_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Below this utilisation a worker's capacity is not estimated (it was nearly idle).
MIN_UTILISATION = 0.05


@dataclass(frozen=True)
class Load:
    """Two samples ``window_s`` apart, summed over every queue and live worker."""

    window_s: float
    workers: int
    processed_per_s: float
    backlog_before: int
    backlog_after: int
    #: Mean of running / concurrency over the live workers, 0..1.
    utilisation: float


@dataclass(frozen=True)
class Advice:
    """What the load needs; ``None`` where the samples cannot tell."""

    arrival_per_s: float
    capacity_per_worker_per_s: float | None
    recommended_workers: int | None
    drain_eta_s: float | None
    reason: str


def advise(load: Load, *, drain_s: float = 60.0, headroom: float = 0.2) -> Advice:
    """Advice for ``load``: keep up with arrivals (+``headroom``) and clear the backlog
    within ``drain_s`` seconds."""
    if load.window_s <= 0 or drain_s <= 0 or headroom < 0:
        raise ValueError("window_s and drain_s must be > 0 and headroom >= 0")
    growth = (load.backlog_after - load.backlog_before) / load.window_s
    arrival = max(0.0, load.processed_per_s + growth)
    net = load.processed_per_s - arrival
    eta = 0.0 if load.backlog_after == 0 else (load.backlog_after / net if net > 0 else None)
    busy = load.backlog_after > 0 or arrival > 0
    if load.workers == 0:
        reason = "no live workers" + (": jobs are waiting" if busy else "")
        return Advice(arrival, None, 1 if busy else 0, None if busy else 0.0, reason)
    if load.utilisation < MIN_UTILISATION or load.processed_per_s <= 0:
        if not busy:
            return Advice(arrival, None, load.workers, eta, "idle: nothing to measure")
        return Advice(
            arrival, None, None, eta,
            "workers completed too little to measure: sample a longer --interval",
        )  # fmt: skip
    capacity = load.processed_per_s / load.workers / min(1.0, load.utilisation)
    needed = arrival * (1 + headroom) + load.backlog_after / drain_s
    recommended = max(1, math.ceil(needed / capacity - 1e-9))
    if recommended > load.workers:
        reason = f"scale up: {load.workers} -> {recommended} workers"
    elif recommended < load.workers:
        reason = f"room to scale down: {load.workers} -> {recommended} workers"
    else:
        reason = f"{load.workers} workers fit the load"
    return Advice(arrival, capacity, recommended, eta, reason)
