"""The process-pool child: runs sync tasks one at a time for its parent worker.

Started as ``python -m stem.worker.child APP_SPEC``. It speaks JSON lines on a private
file descriptor (the original stdout, moved aside), so a task's ``print`` goes to stderr
and never corrupts the protocol. Requests: ``{"task", "args", "kwargs", "ctx", "soft_s"}``;
replies: ``{"ok": true, "result": ..., "rss_kb": ...}`` or ``{"ok": false, "error": {...},
"mro": [...], "retry_delay_s": ...}``. The child decides nothing about retries: it reports
the exception's qualified type names (``mro``) and the worker's ``RetryPolicy`` decides.
Logging in the child goes to stderr (the worker's own), formatted as the worker's
(``STEM_LOG_LEVEL``, ``STEM_JSON_LOGS`` are inherited), with the job's id, task and queue
(and its trace id) on each record; a task's ``print`` lines become records of logger
``stem.print`` with the same fields, shown whatever the level.
The child exits when its stdin closes, and dies with its parent (``PR_SET_PDEATHSIG`` on
Linux, armed by the parent before this program starts), so a killed worker leaves no
orphans.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import resource
import signal
import sys
from types import FrameType
from typing import Any, TextIO

from stem.context import JobContext, reset_current, set_current
from stem.envelope import dumps
from stem.errors import Retry, SoftTimeLimitExceeded, describe, type_names
from stem.observe.logs import configure_logging, set_job_fields
from stem.observe.tracing import trace_id_from_headers
from stem.worker.cpu import unpin_child


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise SoftTimeLimitExceeded("soft time limit exceeded")


def _run(tasks: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    task = tasks[request["task"]]
    ctx = JobContext(**request["ctx"])
    token = set_current(ctx)
    fields = {"job_id": ctx.job_id, "task": ctx.task, "queue": ctx.queue}
    if trace_id := trace_id_from_headers(ctx.headers):
        fields["trace_id"] = trace_id
    set_job_fields(fields)
    soft_s = request.get("soft_s")
    try:
        if soft_s:
            signal.setitimer(signal.ITIMER_REAL, soft_s)
        result = task.fn(*request["args"], **request["kwargs"])
        signal.setitimer(signal.ITIMER_REAL, 0)
        dumps(result, f"the result of task {task.name!r}")  # refuse what cannot be stored
        return {"ok": True, "result": result}
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        reply: dict[str, Any] = {"ok": False, "error": describe(exc), "mro": type_names(exc)}
        if isinstance(exc, Retry):
            reply["retry_delay_s"] = exc.delay_s
        return reply
    finally:
        sys.stdout.flush()
        set_job_fields(None)
        reset_current(token)


class _PrintLines(io.TextIOBase):
    """A ``sys.stdout`` that turns each printed line into a ``stem.print`` log record."""

    def __init__(self) -> None:
        self._logger = logging.getLogger("stem.print")
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            self._emit(line)

    def _emit(self, line: str) -> None:
        # handle(), not info(): a print is shown whatever the log level.
        record = self._logger.makeRecord("stem.print", logging.INFO, "", 0, line, (), None)
        self._logger.handle(record)


def serve(app_spec: str, requests: TextIO, replies: TextIO) -> None:
    """Answer requests until ``requests`` closes."""
    from stem.config import load_app

    # The parent decides when we stop: SIGTERM/SIGINT sent to the whole process group (by
    # stem supervise, Heroku, Ctrl-C) must not kill a running job before the stop timeout.
    # The worker started us with both blocked: one that came while we imported is pending,
    # and ignoring it drops it before they are unblocked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    tasks = load_app(app_spec).tasks
    signal.signal(signal.SIGALRM, _on_alarm)
    replies.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    replies.flush()
    for line in requests:
        reply = _run(tasks, json.loads(line))
        reply["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    """Entry point: move stdout aside for the protocol, then serve."""
    # Dying with the worker is armed by the worker itself, between fork and exec (see
    # process_pool._Proc): by the time this runs, imports are done and the worker may be
    # gone already, so os.getppid() here could name init instead of the worker.
    unpin_child()  # the worker keeps to one CPU (--cpu); its children use them all
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # output below Python (C extensions) goes to stderr, the worker's log
    configure_logging("worker")
    sys.stdout = _PrintLines()
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        serve(sys.argv[1], sys.stdin, protocol)


if __name__ == "__main__":
    main()
