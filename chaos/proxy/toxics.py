"""Toxic records: parsing and validating the JSON that the Toxiproxy API accepts.

A :class:`Toxic` is an immutable record. Updating a toxic through the API builds a new
record with the same name and a new ``serial``, so every live link notices the change
(and re-rolls its toxicity) the next time it looks at the proxy's toxics. What each type
does to the bytes lives in :mod:`chaos.proxy.link`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from chaos.proxy.errors import ApiError, bad_request_body

_serials = itertools.count(1)

#: Attributes of each toxic type with their defaults, in Toxiproxy's field names and units
#: (ms unless the name says otherwise; slicer's ``delay`` is in microseconds, ``rate`` in
#: KB/s). Unknown attributes are ignored, as the Go server's JSON decoding does.
TOXIC_ATTRIBUTES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}


class Stream(Enum):
    """Which way the bytes flow through a toxic: to the upstream server, or back to the client."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


@dataclass(frozen=True)
class Toxic:
    """One toxic as the API shows it; ``serial`` tells two versions of the same name apart."""

    name: str
    type: str
    stream: Stream
    toxicity: float
    attributes: dict[str, int]
    serial: int = field(default_factory=lambda: next(_serials), compare=False)

    def to_json(self) -> dict[str, Any]:
        """The toxic in the API's JSON shape."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream.value,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }

    def attr(self, key: str) -> int:
        """An attribute's value, never negative (a negative delay means no delay)."""
        return max(0, self.attributes[key])


def _int_attributes(toxic_type: str, raw: Any, base: dict[str, int]) -> dict[str, int]:
    if raw is None:
        return dict(base)
    if not isinstance(raw, dict):
        raise bad_request_body("attributes must be an object")
    values = dict(base)
    for key in TOXIC_ATTRIBUTES[toxic_type]:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request_body(f"attribute {key!r} of {toxic_type} must be an integer")
        values[key] = value
    return values


def _toxicity(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise bad_request_body("toxicity must be a number")
    return float(raw)


def _string(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request_body(f"{key} must be a string")
    return value


def parse_new_toxic(body: Any) -> Toxic:
    """Build a toxic from a create request, with Toxiproxy's defaults.

    Defaults: stream ``downstream``, toxicity 1.0, name ``<type>_<stream>``, every
    attribute 0. Raises :class:`ApiError` (400) for a body that is not an object, an
    unknown stream or type, or attributes of the wrong JSON type.
    """
    if not isinstance(body, dict):
        raise bad_request_body("expected a JSON object")
    stream_name = _string(body, "stream", "downstream").lower()
    try:
        stream = Stream(stream_name)
    except ValueError:
        raise ApiError("stream was invalid, can be either upstream or downstream", 400) from None
    toxic_type = _string(body, "type", "")
    name = _string(body, "name", "") or f"{toxic_type}_{stream_name}"
    if toxic_type not in TOXIC_ATTRIBUTES:
        raise ApiError("invalid toxic type", 400)
    defaults = TOXIC_ATTRIBUTES[toxic_type]
    return Toxic(
        name=name,
        type=toxic_type,
        stream=stream,
        toxicity=_toxicity(body.get("toxicity", 1.0)),
        attributes=_int_attributes(toxic_type, body.get("attributes"), defaults),
    )


def parse_toxic_update(old: Toxic, body: Any) -> Toxic:
    """A new version of ``old`` with the attributes and toxicity of an update request.

    As in Toxiproxy, attributes not named keep their value, and a missing ``toxicity``
    keeps the old one.
    """
    if not isinstance(body, dict):
        raise bad_request_body("expected a JSON object")
    return Toxic(
        name=old.name,
        type=old.type,
        stream=old.stream,
        toxicity=_toxicity(body.get("toxicity", old.toxicity)),
        attributes=_int_attributes(old.type, body.get("attributes"), old.attributes),
    )
