"""``BrokerParts``: what each part of ``RedisBroker`` (its mixins: produce, consume,
control) reads from the broker it is mixed into, declared once."""

from __future__ import annotations

from typing import Any

from stem.broker.connection import Faults
from stem.broker.keys import Keys
from stem.broker.scripts import Scripts


class BrokerParts:
    """The attributes ``RedisBroker.__init__`` sets that every mixin uses."""

    url: str
    faults: Faults
    client: Any  # redis.Redis: the Any boundary
    keys: Keys
    scripts: Scripts
