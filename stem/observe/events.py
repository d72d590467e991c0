"""``JobEvents``: one log line per job event, as a middleware.

Logger ``stem.jobs``; every line carries the job id, task and queue (as record fields:
the text form shows them in brackets, the JSON form as keys)::

    started (attempt 0, delivery 1, waited 4 ms)          INFO
    succeeded in 12 ms (waited 4 ms)                      INFO
    failed: ValueError: bad input; retrying (attempt 1) in 2.0 s    INFO
    failed: ValueError: bad input; dead-lettered (max-retries)      WARNING

A job delivered more than once says so in its ``started`` line ("redelivered"): that is
a job the reclaimer took back from a dead worker. ``quiet_tasks`` silences the INFO lines
of chatty tasks (dead-letters are still logged); the worker builds the set from each
task's ``log_events`` switch and ``STEM_QUIET_TASKS`` (comma-separated names).

The hooks also set the log context (:func:`stem.observe.logs.set_job_fields`), so what a
task logs itself, in the worker or in a pool child, carries the same fields.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from stem.middleware.base import Middleware
from stem.observe.logs import set_job_fields
from stem.observe.metrics import run_s
from stem.observe.tracing import job_span_ids
from stem.outcome import Outcome, Verdict

if TYPE_CHECKING:
    from stem.context import JobContext

log = logging.getLogger("stem.jobs")

#: Comma-separated task names whose INFO job lines the worker leaves out.
QUIET_TASKS_ENV = "STEM_QUIET_TASKS"
#: The ``JobContext.state`` key of the wait a job's ``started`` line logged.
_WAITED = "stem.events.wait_s"


class JobEvents(Middleware):
    """Logs received/succeeded/retrying/dead-lettered lines; see the module docstring."""

    def __init__(self, quiet_tasks: Iterable[str] = ()) -> None:
        self.quiet_tasks = frozenset(quiet_tasks)

    def before_process(self, ctx: JobContext) -> None:
        fields = {"job_id": ctx.job_id, "task": ctx.task, "queue": ctx.queue}
        trace_id, span_id = job_span_ids(ctx)  # the consumer span (Tracing runs first)
        if trace_id:  # kept for the retry/dead-letter lines, logged once the span ended
            fields |= {"trace_id": trace_id, "span_id": span_id}
        set_job_fields(fields)
        if ctx.task in self.quiet_tasks or not log.isEnabledFor(logging.INFO):
            return
        # Kept for the ``succeeded`` line; a job that has none logs no ``succeeded`` line
        # either (a quiet task, or INFO off when it started: no half pair).
        waited = ctx.state[_WAITED] = wait_s(ctx)
        again = "redelivered, " if ctx.deliveries > 1 else ""
        _info(
            "before_process",
            "started (%sattempt %d, delivery %d, waited %s)",
            again,
            ctx.attempt,
            ctx.deliveries,
            _ms(waited),
        )

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        waited = ctx.state.get(_WAITED)
        if waited is None or outcome.verdict is not Verdict.COMPLETE:
            return
        if log.isEnabledFor(logging.INFO):
            _info("after_process", "succeeded in %s (waited %s)", _ms(run_s(ctx)), _ms(waited))

    def on_retry(self, ctx: JobContext, outcome: Outcome) -> None:
        if ctx.task in self.quiet_tasks:
            return
        log.info(
            "failed: %s; retrying (attempt %d) in %.1f s",
            _error(outcome.error),
            ctx.attempt + 1,
            outcome.delay_s,
        )

    def on_dead_letter(self, ctx: JobContext | None, reason: str, error: str) -> None:
        if ctx is None:
            return  # the executor logs a job it could not even decode, with its id
        log.warning("failed: %s; dead-lettered (%s)", _error_text(error), reason)


def _info(hook: str, msg: str, *args: object) -> None:
    """``log.info(msg, *args)`` without ``Logger.findCaller``'s stack walk.

    Two lines per job made the walk (which only fills ``pathname``/``lineno``, unused by
    stem's formats) a tenth of a no-op job's cost; the record names this module and the
    hook instead.
    """
    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, msg, args, None, hook))


def wait_s(ctx: JobContext) -> float:
    """Seconds between enqueue and now (the job's wait; includes a delay it asked for)."""
    return max(0.0, time.time() - ctx.enq_ms / 1000) if ctx.enq_ms else 0.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _error(error: BaseException | None) -> str:
    if error is None:
        return "error"
    record = getattr(error, "record", None)  # a pool child's error, as it described it
    if isinstance(record, dict):
        return f"{record.get('type', 'Error')}: {record.get('message', '')}"
    return f"{type(error).__name__}: {error}"


def _error_text(error: str) -> str:
    try:
        doc = json.loads(error)
    except ValueError:
        return error
    if isinstance(doc, dict):
        return f"{doc.get('type', 'Error')}: {doc.get('message', '')}"
    return error
