"""How many jobs a worker holds beyond those it runs: ``--prefetch N``, or ``auto``.

A prefetched job is fetched before a slot frees, so the slot starts its next job at once
instead of a fetch round trip later. How many that takes depends on the pace: ten slots
of 0.1 ms jobs free 100 slots a millisecond, so across a 1 ms round trip they need about
a hundred jobs ahead; ten slots of one-minute jobs need none, and every job held ahead is
one that another, idle worker cannot start (Celery's users meet this as the
prefetch-multiplier problem). No fixed number is right for both.

``auto`` (the default) holds as many as the worker will start within ``BUDGET_S`` at the
pace it measures. By Little's law, ``concurrency`` slots whose jobs take ``mean`` seconds
each start ``concurrency / mean`` jobs a second, so the prefetch is
``concurrency * BUDGET_S / mean``, at least 0 and at most ``MOST_PER_SLOT *
concurrency``. ``mean`` is a moving average of the time a runner spent per job, and
while every slot is busy at least the run time so far of the youngest running job: a
switch to long jobs stops the prefetching as soon as the slots fill with them, not only
once the first has finished. Until a job has finished it holds none ahead (``START``): the
first jobs show the pace before any job waits behind them.

What it bounds: a prefetched job waits about ``BUDGET_S`` on this worker before it starts,
if the pace holds. The jobs fetched just before a switch from short to long jobs would
wait behind the long ones: once every slot has run its job for ``SHED_AFTER_S`` (1 s,
``stem.worker.core``), the worker hands back those beyond its prefetch then (0 for such
jobs) so that idle workers can start them (they go to the tail of their stream, as a
stop's hand-back does). A fixed number holds that many ahead whatever the jobs are, and
keeps them (the default was 10 before ``auto``). Whatever the setting, a worker never
holds more than ``concurrency + prefetch`` at the moment it fetches (Redis checks the cap
with each fetch a settle carries; the fetch sent along with a blocking wait, which runs
only when a job arrives, takes jobs for free slots only).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from stem.config import PrefetchSetting as Setting

#: How long, at the measured pace, the jobs held ahead take to start (``auto``).
BUDGET_S = 0.05
#: ``auto`` holds at most this many per slot (``concurrency``) ahead.
MOST_PER_SLOT = 10
#: What ``auto`` holds ahead before the first job has finished.
START = 0
#: The weight of each finished job in the moving average of the time per job.
WEIGHT = 0.1


class Prefetch:
    """The worker's prefetch now (``value``), from its runners' ``start``/``finish``."""

    def __init__(
        self, concurrency: int, setting: Setting, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.concurrency = concurrency
        self.setting = setting
        self.most = MOST_PER_SLOT * concurrency if setting == "auto" else setting
        self.mean_s: float | None = None  # time per job, moving average
        self._started = [0.0] * concurrency  # per runner slot: when its job started; 0: idle
        self.busy = 0  # runner slots running a job now
        self._clock = clock

    def start(self, slot: int) -> None:
        """Runner ``slot`` starts a job."""
        self._started[slot] = self._clock()
        self.busy += 1

    def finish(self, slot: int, *, counted: bool = True) -> None:
        """Runner ``slot`` is done with its job (whatever the outcome); ``counted=False``
        leaves its time out of the average (a job that did not return: revoked, or cut short
        by a stop; not the pace)."""
        took_s = self._clock() - self._started[slot]
        self._started[slot] = 0.0
        self.busy -= 1
        if not counted:
            return
        mean = self.mean_s
        self.mean_s = took_s if mean is None else mean + WEIGHT * (took_s - mean)

    def busy_for_s(self) -> float:
        """How long every slot has been busy (the youngest running job's age); 0 while a
        slot is free."""
        if self.busy < self.concurrency:
            return 0.0
        return self._clock() - max(self._started)

    def value(self) -> int:
        """Jobs to hold beyond the running ones, now."""
        if self.setting != "auto":
            return self.setting
        # While every slot is busy, the pace is at least the youngest running job's age.
        mean_s = max(self.mean_s or 0.0, self.busy_for_s())
        if mean_s * self.most <= self.concurrency * BUDGET_S:
            ahead = self.most
        else:
            ahead = int(self.concurrency * BUDGET_S / mean_s)
        return ahead if self.mean_s is not None else min(START, ahead)

    def capacity(self) -> int:
        """Jobs to hold in all, now: the slots and the prefetch."""
        return self.concurrency + self.value()
