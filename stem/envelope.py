"""The job envelope: the versioned JSON document that travels from producer to worker.

An envelope is immutable once written: it holds what the producer decided (task, args,
queue, priority, headers). What changes while a job lives (attempt, deliveries, state)
lives in the job record next to it, so that a signature over the envelope's exact bytes
stays valid across retries, reclaims and dead-letter replays. A signed envelope carries
two more keys at its end, ``kid`` and ``sig`` (see :mod:`stem.signing`); :func:`decode`
ignores them. JSON only, never pickle.

Version 1 fields: ``v`` (1), ``id``, ``task``, ``args`` (list), ``kwargs`` (object),
``queue``, ``priority`` (0-9, higher runs first), ``enq_ms`` (producer clock, epoch ms),
``eta_ms`` (0 unless delayed), ``headers`` (string to string, carried as given; stem
sets none itself yet: W3C ``traceparent``/``tracestate`` propagation is planned).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stem.errors import PayloadError, SerializationError

VERSION = 1

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
#: ``json.loads`` minus its per-call work (encoding sniffing of bytes, keyword checks).
_decode = json.JSONDecoder().decode


def new_job_id() -> str:
    """A new job id: sortable by creation time (ms), 80 random bits after it."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_job_ids(count: int) -> list[str]:
    """``count`` new job ids as :func:`new_job_id` makes them (one clock read, one
    ``urandom`` call: the bulk path)."""
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    noise = os.urandom(10 * count).hex()
    return [stamp + noise[i : i + 20] for i in range(0, 20 * count, 20)]


class EnvelopeFields(Protocol):
    """What :func:`encode_many` reads from each job (``OutgoingJob`` has it all)."""

    @property
    def job_id(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def args(self) -> list[Any] | tuple[Any, ...]: ...
    @property
    def kwargs(self) -> dict[str, Any]: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def eta_ms(self) -> int: ...
    @property
    def headers(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Envelope:
    """A decoded envelope: build one from its fields, read one with :func:`decode`."""

    id: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str
    priority: int = 0
    enq_ms: int = 0
    eta_ms: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        """The exact JSON text that is stored (and that signing signs)."""
        return encode_fields(
            self.id,
            self.task,
            self.args,
            self.kwargs,
            self.queue,
            self.priority,
            self.enq_ms,
            self.eta_ms,
            self.headers,
        )


def encode_fields(
    job_id: str,
    task: str,
    args: list[Any] | tuple[Any, ...],
    kwargs: dict[str, Any],
    queue: str,
    priority: int,
    enq_ms: int,
    eta_ms: int,
    headers: dict[str, str],
) -> str:
    """Encode an envelope without building an :class:`Envelope` first (the hot path).

    Raises :class:`SerializationError` naming the first argument that is not JSON.
    """
    doc = {
        "v": VERSION,
        "id": job_id,
        "task": task,
        "args": args,
        "kwargs": kwargs,
        "queue": queue,
        "priority": priority,
        "enq_ms": enq_ms,
        "eta_ms": eta_ms,
        "headers": headers,
    }
    try:
        return _encode(doc)
    except (TypeError, ValueError) as exc:
        raise SerializationError(_name_bad_argument(task, args, kwargs, exc)) from None


def encode_many(jobs: Sequence[EnvelopeFields], enq_ms: int) -> list[str]:
    """The envelope of each job, exactly as :func:`encode_fields` makes it: the bulk path.

    Faster because what jobs share (task and queue names) is encoded once and an empty
    ``kwargs``/``headers`` is not encoded at all; a job whose fast encoding fails goes
    through :func:`encode_fields`, which raises the same :class:`SerializationError`
    naming the argument (``tests/test_envelope.py`` checks both are byte-identical).
    """
    names: dict[str, str] = {}
    enq = _number(enq_ms)
    out = []
    for job in jobs:
        try:
            task = names.get(job.task) or names.setdefault(job.task, _encode(job.task))
            queue = names.get(job.queue) or names.setdefault(job.queue, _encode(job.queue))
            kwargs = _encode(job.kwargs) if job.kwargs else "{}"
            headers = _encode(job.headers) if job.headers else "{}"
            out.append(
                f'{{"v":{VERSION},"id":{_encode(job.job_id)},"task":{task},'
                f'"args":{_encode(job.args)},"kwargs":{kwargs},"queue":{queue},'
                f'"priority":{_number(job.priority)},"enq_ms":{enq},'
                f'"eta_ms":{_number(job.eta_ms)},"headers":{headers}}}'
            )
        except (TypeError, ValueError):
            out.append(encode_fields(job.job_id, job.task, job.args, job.kwargs, job.queue,
                job.priority, enq_ms, job.eta_ms, job.headers))  # fmt: skip
    return out


def _number(value: int) -> str:
    return str(value) if type(value) is int else _encode(value)


def dumps(value: Any, what: str) -> str:
    """Encode a result or error value, naming ``what`` if it is not JSON-serialisable."""
    if value is None:  # most tasks return nothing: skip the encoder's three calls
        return "null"
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{what} is not JSON-serialisable: {exc}") from None


def _name_bad_argument(
    task: str, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any], exc: Exception
) -> str:
    for index, value in enumerate(args):
        try:
            _encode(value)
        except (TypeError, ValueError):
            kind = type(value).__name__
            return f"task {task!r}: positional argument {index} ({kind}) is not JSON-serialisable"
    for name, value in kwargs.items():
        try:
            _encode(value)
        except (TypeError, ValueError):
            kind = type(value).__name__
            return f"task {task!r}: keyword argument {name!r} ({kind}) is not JSON-serialisable"
    return f"task {task!r}: arguments are not JSON-serialisable: {exc}"


def decode(raw: bytes | str) -> Envelope:
    """Decode and validate an envelope; raise :class:`PayloadError` saying what is wrong."""
    try:
        doc = _decode(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"envelope is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError("envelope is not a JSON object")
    if doc.get("v") != VERSION:
        raise PayloadError(f"unsupported envelope version {doc.get('v')!r}")
    try:
        env = Envelope(
            id=doc["id"],
            task=doc["task"],
            args=doc["args"],
            kwargs=doc["kwargs"],
            queue=doc["queue"],
            priority=doc["priority"],
            enq_ms=doc["enq_ms"],
            eta_ms=doc["eta_ms"],
            headers=doc["headers"],
        )
    except KeyError as exc:
        raise PayloadError(f"envelope lacks field {exc.args[0]!r}") from None
    for name, kind in _FIELD_TYPES:
        value = getattr(env, name)
        if type(value) is not kind:
            raise PayloadError(f"envelope field {name!r} should be {kind.__name__}")
    return env


_FIELD_TYPES = (
    ("id", str),
    ("task", str),
    ("args", list),
    ("kwargs", dict),
    ("queue", str),
    ("priority", int),
    ("enq_ms", int),
    ("eta_ms", int),
    ("headers", dict),
)
