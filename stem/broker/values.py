"""Reading values back from Redis, when stem may not have written them.

Anything in Redis can be changed by someone else: an operator's ``HSET``, another program,
a half-applied migration. These readers never raise on such a value; each caller decides
what a value it cannot use costs (one job, one table row), never an actor or a batch.
"""

from __future__ import annotations

import json
import math
from typing import Any

from stem.states import JobState


def text(value: Any) -> str | None:
    """Text of a Redis value; bytes that are not UTF-8 stay visible as backslash escapes."""
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    return None if value is None else str(value)


def utf8(value: bytes | str | None) -> str | None:
    """Text of a value stem wrote (a job id), or None when it is not UTF-8."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def integer(value: Any) -> int | None:
    """A number Redis returned, or None when missing or not a finite number.

    Redis prints large sorted-set scores in exponent form (``1.79e+21``): those are
    numbers too, floored.
    """
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def job_state(value: Any) -> JobState | None:
    """The job state stored in a record, or None when missing or not a known state."""
    try:
        return JobState(text(value))
    except ValueError:
        return None


def json_object(value: Any) -> dict[str, Any] | None:
    """A JSON object stored as a string, or None when it is not one."""
    try:
        doc = json.loads(value)
    except (TypeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
