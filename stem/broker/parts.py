"""``BrokerParts``: what each part of ``RedisBroker`` (its mixins: produce, consume,
control) reads from the broker it is mixed into, declared once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.commands.core import Script

from stem.broker.connection import Faults
from stem.broker.held import HeldConnection
from stem.broker.keys import Keys
from stem.broker.scripts import Scripts


class BrokerParts:
    """The attributes ``RedisBroker.__init__`` sets that every mixin uses."""

    url: str
    faults: Faults
    client: Any  # redis.Redis: the Any boundary
    keys: Keys
    scripts: Scripts
    _held: HeldConnection | None  # None on a cluster

    def _call_script(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """``script(keys=keys, args=args)``, on the held connection where there is one
        (the worker's hot path: docs/performance.md, Change 19)."""
        if self._held is not None:
            return self._held.call_script(script, keys, args)
        return script(keys=keys, args=args)
