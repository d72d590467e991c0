"""The broker's side of limits: the limiter's round, run-time definitions, counters.
Mixed into ``RedisBroker``. The hot path (take a slot or a token with the delivery) is
in ``fetch.lua``; slots are given back by the settle scripts; see lua/lib.lua's limits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from stem.broker.base import LimitRound, LimitSpec
from stem.broker.connection import Faults, mapped
from stem.broker.keys import GROUP, Keys
from stem.broker.scripts import Scripts
from stem.broker.values import integer, text

#: Per limiter round and queue: the most jobs released and limit instances visited
#: (bounds the time one script call holds Redis; the next round goes on round-robin).
RELEASE_BUDGET = 500
VISIT_BUDGET = 1000


#: The largest window guard (starts remembered per rate-limit instance); a rate whose
#: second holds more starts than this is held to its bucket alone (see lua/lib.lua).
GUARD_MAX = 1000


def guard_size(limit: LimitSpec) -> int:
    """How many starts a 1-second window may hold under ``limit``: its rate rounded up,
    plus the burst (0: no rate, or too many to remember; the bucket alone holds it)."""
    if limit.rate_per_s <= 0:
        return 0
    n = math.ceil(limit.rate_per_s - 1e-9) + limit.burst
    return n if n <= GUARD_MAX else 0


@lru_cache(maxsize=16)
def limits_json(limits: tuple[LimitSpec, ...]) -> str:
    """Definitions as the scripts read them: name -> [concurrency, tokens per ms, capacity,
    window guard size].

    The bucket holds one token (starts are spread out evenly), or one millisecond's worth
    when that is more (a rate above 1000/s starts several jobs in one fetch), plus the
    burst.
    """
    return json.dumps(
        {
            s.name: [
                s.concurrency,
                s.rate_per_s / 1000.0,
                max(1.0, s.rate_per_s / 1000.0) + s.burst,
                guard_size(s),
            ]
            for s in limits
        },
        separators=(",", ":"),
    )


class LimitsMixin:
    """The limiter's calls and the run-time definitions (needs ``client``, ``keys``,
    ``scripts``)."""

    url: str
    faults: Faults
    client: Any  # redis.Redis: the Any boundary
    keys: Keys
    scripts: Scripts

    @mapped
    def limit_round(self, queue: str, limits: Sequence[LimitSpec]) -> LimitRound:
        """Take back slots of deliveries that are over and release throttled jobs of
        ``queue`` that may run now (round-robin across instances, FIFO within one)."""
        qk = self.keys.queue(queue)
        args: list[Any] = [qk.prefix, GROUP, limits_json(tuple(limits))]
        args += [RELEASE_BUDGET, VISIT_BUDGET]
        released, freed, waiting, waited, due = self.scripts.limits(keys=[], args=args)
        return LimitRound(int(released), int(freed), int(waiting), int(waited), int(due))

    @mapped
    def limit_overrides(self) -> dict[str, str]:
        """Definitions set at run time: limit name -> JSON (see ``stem.limits``)."""
        raw = self.client.hgetall(self.keys.limits)
        return {text(k) or "": text(v) or "" for k, v in raw.items()}

    @mapped
    def set_limit_override(self, name: str, definition: str) -> None:
        """Store the run-time definition of limit ``name`` (JSON)."""
        self.client.hset(self.keys.limits, name, definition)

    @mapped
    def clear_limit_override(self, name: str) -> bool:
        """Remove the run-time definition of ``name``; True if there was one."""
        return bool(self.client.hdel(self.keys.limits, name))

    @mapped
    def limit_waiting(self, queue: str) -> int:
        """How many jobs of ``queue`` wait for a limit now (a counter: one read)."""
        value = self.client.hget(self.keys.queue(queue).stats, "limit_waiting")
        return max(0, integer(value) or 0)

    @mapped
    def limit_counters(self, queue: str) -> dict[str, int]:
        """The limiter's counters of ``queue``: throttled, released, slots freed, total
        wait ms, and how many jobs and instances are waiting now."""
        qk = self.keys.queue(queue)
        fields = ["throttled", "limit_released", "slots_freed", "limit_wait_ms"]
        values = self.client.hmget(qk.stats, fields)
        out = {f: int(v or 0) for f, v in zip(fields, values, strict=True)}
        instances = [text(i) or "" for i in self.client.zrange(qk.limit_waiting, 0, -1)]
        with self.client.pipeline(transaction=False) as pipe:
            for inst in instances:
                pipe.zcard(qk.wait(inst))
            counts = pipe.execute()
        out["waiting_instances"] = len(instances)
        out["waiting"] = sum(int(c) for c in counts)
        return out
