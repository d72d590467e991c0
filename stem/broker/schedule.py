"""The schedule store: beat entries and their last runs, in two namespace-wide hashes.

``Keys.schedule`` maps an entry name to its stored definition and ``Keys.schedule_state``
maps it to its run record; both values are JSON documents whose shape belongs to
:mod:`stem.beat.store` (this module moves strings, it does not read them). Reads are one
pipelined round trip; changes to definitions run under ``WATCH`` so that concurrent writers
(several beats syncing at start, an operator's CLI) never lose each other's updates: a
transaction that saw a concurrent change is recomputed from fresh data. A run is recorded
by one script (``lua/schedule_run.lua``, loaded with the others by ``Scripts``), so
replicas that win successive ticks of one entry never contend.

The per-tick exactly-once guard is *not* here: it is the enqueue script's idempotency key
(see ``lua/enqueue.lua``), set in the same atomic step as the job itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import redis
from redis.commands.core import Script

from stem.broker.base import DefinitionChange, ScheduleSnapshot
from stem.broker.connection import Faults, mapped
from stem.broker.keys import Keys

log = logging.getLogger("stem.broker.schedule")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decoded(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


class RedisScheduleStore:
    """The schedule hashes of one broker's namespace (``RedisBroker.schedule_store()``
    builds it on the broker's connection pool; it satisfies ``roles.ScheduleStore``).

    Every method blocks (beat calls them from ``trio.to_thread.run_sync``) and raises
    ``BrokerUnavailable`` when Redis cannot be reached.
    """

    def __init__(self, client: Any, keys: Keys, faults: Faults, record_run: Script) -> None:
        self.url = faults.url
        self.faults = faults
        self.client: Any = client  # redis-py replies are untyped: the Any boundary
        self.definitions_key = keys.schedule
        self.states_key = keys.schedule_state
        self._record = record_run

    @mapped
    def read(self) -> ScheduleSnapshot:
        """Every definition and every run record (one pipelined round trip)."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.definitions_key)
            pipe.hgetall(self.states_key)
            definitions, states = pipe.execute()
        return ScheduleSnapshot(_decoded(definitions), _decoded(states))

    @mapped
    def definition(self, name: str) -> str | None:
        """One stored definition, or None."""
        raw = self.client.hget(self.definitions_key, name)
        return None if raw is None else _text(raw)

    @mapped
    def state(self, name: str) -> str | None:
        """One run record, or None when the entry never ran."""
        raw = self.client.hget(self.states_key, name)
        return None if raw is None else _text(raw)

    @mapped
    def change_definitions(
        self, compute: Callable[[dict[str, str]], DefinitionChange]
    ) -> DefinitionChange:
        """Apply ``compute(current definitions)`` atomically; return what was applied.

        ``compute`` may be called more than once (again after a concurrent write), so it
        must be a pure function of its argument.
        """
        out: list[DefinitionChange] = []
        fresh: list[str] = []  # run records to clear: deleted names and new ones

        def transaction(pipe: redis.client.Pipeline) -> None:
            current = _decoded(pipe.hgetall(self.definitions_key))
            change = compute(current)
            out[:] = [change]
            fresh[:] = [*change.deletes, *(n for n in change.puts if n not in current)]
            pipe.multi()
            if change.puts:
                puts: dict[Any, Any] = dict(change.puts)  # redis-py's Mapping is invariant
                pipe.hset(self.definitions_key, mapping=puts)
            if change.deletes:
                pipe.hdel(self.definitions_key, *change.deletes)

        self.client.transaction(transaction, self.definitions_key)
        if fresh:
            # After the transaction, not in it: on a Redis Cluster the two hashes are in
            # different slots, and a transaction must stay in one. A run record can
            # outlive its definition (a crash right here, or a beat round that read the
            # entry before it was removed and records its tick after), so a name that is
            # new to the definitions is cleared too: an entry defined again starts fresh
            # instead of catching up from an old record's last tick.
            try:
                self.client.hdel(self.states_key, *fresh)
            except redis.RedisError as exc:  # the change is made: say so, not "failed"
                log.warning(
                    "schedule: the definitions changed, but the run records of %s in %s "
                    "could not be cleared (%s: %s); an entry of that name defined again "
                    "may catch up ticks from its old record",
                    ", ".join(fresh), self.states_key, type(exc).__name__, exc,
                )  # fmt: skip
        return out[0]

    @mapped
    def record_run(
        self,
        name: str,
        run: str,
        *,
        tick_ms: int | None,
        fire_at_ms: int | None,
        keep_drifts: int,
    ) -> int | None:
        """Record one run of ``name`` (``run``: a JSON object); return its drift in ms.

        For a tick (``tick_ms`` and its jittered ``fire_at_ms`` given) the script stamps
        the run with the server's time, computes the drift, appends it to the newest
        ``keep_drifts`` samples and moves the entry's last tick forward (never back). A
        manual run (both None) becomes the last run and leaves the last tick alone.
        """
        args = [name, run, "" if tick_ms is None else tick_ms]
        args += ["" if fire_at_ms is None else fire_at_ms, keep_drifts]
        drift = self._record(keys=[self.states_key], args=args)
        return None if drift is None else int(drift)
