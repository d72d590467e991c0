"""Children's output, line by line, labelled, on the supervisor's stdout.

Text mode (honcho style), labels padded to the longest one::

    redis.1    | Ready to accept connections
    worker.1   | started
    supervisor | worker.1 exited with code 1; restarting in 0.5 s

JSON mode, one object per line, with the keys of stem's JSON logs (``ts``, ``level``,
``logger``, ``msg``, ``actor``, ``pid``) plus ``child`` and ``stream``::

    {"ts": "2025-01-01T12:00:00.123Z", "level": "INFO", "logger": "worker.1", "msg": "started",
     "actor": "worker.1", "pid": 4242, "child": "worker.1", "stream": "stdout"}

A child's line that is a JSON object already (an actor run with JSON logs) is passed
through with ``child`` and ``stream`` added, not wrapped; a plain line becomes ``msg``
at level ``INFO`` (stderr carries ordinary logs too) with the supervisor's ``pid``.
The supervisor's own messages use the label ``supervisor``, stream ``event``. Bytes that
are not UTF-8 are replaced, ``\\r\\n`` counts as a line end, and a line longer than
``MAX_LINE_BYTES`` is cut into pieces. If writing to the destination fails (closed stdout,
broken pipe) the output is dropped from then on and supervision carries on.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import trio

SUPERVISOR_LABEL = "supervisor"
MAX_LINE_BYTES = 64 * 1024
_READ_BYTES = 64 * 1024


class OutputWriter:
    """Formats and writes labelled lines; ``stream=None`` means ``sys.stdout`` at write time."""

    def __init__(
        self, labels: Iterable[str], *, json_lines: bool = False, stream: TextIO | None = None
    ) -> None:
        self._width = max(len(label) for label in [*labels, SUPERVISOR_LABEL])
        self._json = json_lines
        self._stream = stream
        self._broken = False

    def line(self, label: str, stream_name: str, text: str) -> None:
        """Write one line of ``label``'s ``stream_name`` (``stdout``, ``stderr`` or ``event``)."""
        if self._json:
            self._write(json.dumps(_record(label, stream_name, text), ensure_ascii=False))
        else:
            self._write(f"{label:<{self._width}} | {text}")

    def event(self, text: str) -> None:
        """Write one of the supervisor's own messages."""
        self.line(SUPERVISOR_LABEL, "event", text)

    def _write(self, text: str) -> None:
        if self._broken:
            return
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):
            self._broken = True


def _record(label: str, stream_name: str, text: str) -> dict[str, Any]:
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            doc.setdefault("child", label)
            doc.setdefault("stream", stream_name)
            return doc
    return {
        "ts": _timestamp(),
        "level": "INFO",
        "logger": label,
        "msg": text,
        "actor": label,
        "pid": os.getpid(),
        "child": label,
        "stream": stream_name,
    }


def _timestamp() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def pump_lines(
    source: trio.abc.ReceiveStream,
    emit: Callable[[str], None],
    max_line_bytes: int = MAX_LINE_BYTES,
) -> None:
    """Read ``source`` until EOF and call ``emit`` with each decoded line (no line end).

    A last line without a line end is emitted at EOF. Does not close ``source``.
    """
    pending = b""
    while chunk := await source.receive_some(_READ_BYTES):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            _emit_cut(raw, emit, max_line_bytes)
        while len(pending) > max_line_bytes:
            emit(_decode(pending[:max_line_bytes]))
            pending = pending[max_line_bytes:]
    if pending:
        emit(_decode(pending))


def _emit_cut(raw: bytes, emit: Callable[[str], None], max_line_bytes: int) -> None:
    raw = raw.removesuffix(b"\r")
    for start in range(0, max(len(raw), 1), max_line_bytes):
        emit(_decode(raw[start : start + max_line_bytes]))


def _decode(raw: bytes) -> str:
    return raw.removesuffix(b"\r").decode("utf-8", errors="replace")
