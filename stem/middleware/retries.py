"""Built-in middleware that turns a failed attempt into a retry or a dead-letter.

``Retries`` hands every ``FAILED`` outcome to the task's ``RetryPolicy``
(:meth:`stem.task.RetryPolicy.decide`), which holds the whole decision: retryable or not
(also for an error raised in a pool child, matched by its exception type names), the
backoff or the delay a ``Retry`` asked for, the hard time limit, ``max_retries``.

Time limits are not middleware: the executor reads them from the task
(``soft_time_limit_s``, ``time_limit_s``) and hands them to the runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stem.middleware.base import Middleware
from stem.outcome import Outcome, Verdict

if TYPE_CHECKING:
    from stem.context import JobContext
    from stem.task import Task


class Retries(Middleware):
    """Decide retry or dead-letter for every failed attempt (always installed first)."""

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        if outcome.verdict is not Verdict.FAILED or outcome.error is None:
            return
        task: Task[..., object] = ctx.state["task"]
        task.retry.decide(outcome, ctx.attempt)
