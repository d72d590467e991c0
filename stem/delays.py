"""Promoting due delayed jobs: one round, shared by the worker and the reclaimer.

Both actors promote (so delays work with only one of them running); each call is one
Lua script per queue, so any number of them can run at once without promoting a job
twice. A queue whose promotion fails for a passing reason (``BrokerUnavailable``) is
logged and skipped for this round, so one queue cannot stop the others; a permanent
refusal (``BrokerRefused``) propagates and stops the actor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from stem.errors import BrokerUnavailable

if TYPE_CHECKING:
    from stem.broker import Promoter

log = logging.getLogger("stem.delays")

#: How often due delayed jobs are looked for when none is known to be due sooner.
PROMOTE_IDLE_S = 0.05
#: The shortest wait between rounds, so a burst of due jobs cannot spin the loop.
PROMOTE_MIN_S = 0.002
#: The wait after a round that could not reach Redis (as the fetch loop's retry), so an
#: outage costs one warning and one reconnect a second, not twenty.
PROMOTE_RETRY_S = 1.0


def promote_round(broker: Promoter, queues: Sequence[str]) -> float:
    """Promote the due delayed jobs of ``queues``; return seconds until the next round.

    Blocking (run it in a thread). The wait is ``PROMOTE_IDLE_S`` at most, shorter when
    a delayed job is due sooner, and ``PROMOTE_MIN_S`` at least.
    """
    wait_s = PROMOTE_IDLE_S
    failed = False
    for queue in queues:
        try:
            _, next_ms = broker.promote_due(queue)
        except BrokerUnavailable as exc:
            log.warning("%s: promoting delayed jobs failed, retrying in 1 s: %s", queue, exc)
            failed = True
            continue
        if next_ms >= 0:
            wait_s = min(wait_s, next_ms / 1000)
    return PROMOTE_RETRY_S if failed else max(wait_s, PROMOTE_MIN_S)
