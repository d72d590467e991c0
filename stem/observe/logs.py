"""Log setup for actor processes: one line per record on stderr, text or JSON.

Text (the default) stays short::

    2026-01-01T12:00:00 INFO worker[4242] stem.jobs: succeeded in 12 ms (waited 3 ms)
        [job=0192... task=app.add queue=default]      <- on the same line

JSON (``--json-logs`` or ``STEM_JSON_LOGS=1``): each line one object with ``ts``, ``level``,
``logger``, ``msg``, ``actor``, ``pid``, and, where known, ``job_id``, ``task``, ``queue``,
``trace_id``, ``span_id`` (plus ``exc`` with a traceback). The job fields come from a
context variable that :func:`set_job_fields` sets around each job (the ``JobEvents``
middleware in the worker, the request loop in a pool child), so a task's own ``logging``
calls carry them too; the trace fields come from the current OpenTelemetry span.

Both settings travel in the environment (``STEM_LOG_LEVEL``, ``STEM_JSON_LOGS``) so that
pool children and the actors of ``stem supervise`` log the same way as their parent.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

LEVEL_ENV = "STEM_LOG_LEVEL"
JSON_ENV = "STEM_JSON_LOGS"

#: The job a log record belongs to: ``job_id``, ``task``, ``queue`` (and ``trace_id``).
_job_fields: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "stem_log_job", default=None
)

_TRACE_KEYS = ("trace_id", "span_id")


def set_job_fields(fields: Mapping[str, str] | None) -> None:
    """Attach ``fields`` (job id, task, queue) to every record logged from this context."""
    _job_fields.set(fields)


def json_logs_wanted() -> bool:
    """Whether ``STEM_JSON_LOGS`` asks for JSON lines."""
    return os.environ.get(JSON_ENV, "").lower() in {"1", "true", "yes", "on"}


class JobFilter(logging.Filter):
    """Copies the current job's fields and the current span's ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _job_fields.get()
        if fields:
            attrs = record.__dict__
            for key, value in fields.items():
                attrs.setdefault(key, value)  # a field the caller passed in ``extra`` wins
        trace_id, span_id = current_span_ids()
        if trace_id:  # a span the task opened itself wins over the job's own
            record.trace_id, record.span_id = trace_id, span_id
        return True


def current_span_ids() -> tuple[str, str]:
    """The current OpenTelemetry span's trace and span id in hex (empty strings if none)."""
    # Imported lazily: the API is cheap, but a process that never traces need not pay it.
    otel = sys.modules.get("opentelemetry.trace")
    if otel is None:
        return "", ""
    return span_ids(otel.get_current_span().get_span_context())


def span_ids(span_context: Any) -> tuple[str, str]:
    """A span context's trace and span id in hex (empty strings if it is not valid)."""
    if not span_context.is_valid:
        return "", ""
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


class TextFormatter(logging.Formatter):
    """``time level actor[pid] logger: message [job=... task=... queue=...]``.

    Builds the line itself instead of through ``logging.Formatter.format``: the worker logs
    two lines per job, and the generic path (a ``strftime`` per record, the ``%``-style
    template, the record's ``asctime``) cost more than the rest of logging together. The
    time stamp is formatted once per second. The output is the same as the generic
    formatter's with the template below (``tests/observe/test_logs.py`` compares them).
    """

    TEMPLATE = "%(asctime)s %(levelname)s {actor}[%(process)d] %(name)s: %(message)s"
    DATEFMT = "%Y-%m-%dT%H:%M:%S"

    def __init__(self, actor: str) -> None:
        super().__init__(self.TEMPLATE.format(actor=actor), self.DATEFMT)
        self.actor = actor
        self._stamp: tuple[int, str] = (-1, "")  # (whole second, its text)

    def format(self, record: logging.LogRecord) -> str:
        second, stamp = self._stamp
        if int(record.created) != second:
            stamp = time.strftime(self.DATEFMT, self.converter(record.created))
            self._stamp = (int(record.created), stamp)
        line = (
            f"{stamp} {record.levelname} {self.actor}[{record.process}] {record.name}: "
            f"{record.getMessage()}"
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = _below(line, record.exc_text)
        if record.stack_info:
            line = _below(line, self.formatStack(record.stack_info))
        job_id = record.__dict__.get("job_id")
        if not job_id:
            return line
        task, queue = record.__dict__.get("task", "-"), record.__dict__.get("queue", "-")
        head, sep, tail = line.partition("\n")  # a traceback stays below the tags
        return f"{head} [job={job_id} task={task} queue={queue}]{sep}{tail}"


def _below(line: str, text: str) -> str:
    """``text`` on the lines after ``line`` (as ``logging.Formatter.format`` joins them)."""
    return line + text if line.endswith("\n") else f"{line}\n{text}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the keys)."""

    def __init__(self, actor: str) -> None:
        super().__init__()
        self.actor = actor

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "actor": self.actor,
            "pid": record.process,
        }
        for key in ("job_id", "task", "queue", *_TRACE_KEYS):
            value = getattr(record, key, None)
            if value:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    stamp = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(
    actor: str,
    level: str | None = None,
    *,
    json_lines: bool | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send every log record (stem's and the tasks') to stderr, one line each.

    The level comes from ``level``, else ``$STEM_LOG_LEVEL``, else INFO; JSON lines from
    ``json_lines``, else ``$STEM_JSON_LOGS``. Configures the root logger, replacing its
    handlers, so calling it again (tests, a pool child) does not duplicate lines.
    """
    chosen = (level or os.environ.get(LEVEL_ENV) or "INFO").upper()
    as_json = json_logs_wanted() if json_lines is None else json_lines
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(actor) if as_json else TextFormatter(actor))
    handler.addFilter(JobFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(chosen)
    stem_logger = logging.getLogger("stem")
    stem_logger.handlers.clear()
    stem_logger.setLevel(logging.NOTSET)
    stem_logger.propagate = True
