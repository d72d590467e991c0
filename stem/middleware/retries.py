"""Built-in middleware that turns a failed attempt into a retry or a dead-letter.

``Retries`` reads the task's ``RetryPolicy``: a retryable error with attempts left becomes
``retry`` after the policy's backoff (full jitter) or the ``Retry(delay_s=...)`` the task
raised; otherwise the job is buried with reason ``max-retries`` or ``not-retryable``.
A hard time limit is not retried unless the task lists ``HardTimeLimitExceeded`` in
``retry_on`` (a runaway task would only burn the pool again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stem.errors import HardTimeLimitExceeded, Retry
from stem.middleware.base import Middleware, Outcome
from stem.states import DeadReason

if TYPE_CHECKING:
    from stem.context import JobContext
    from stem.task import Task


class Retries(Middleware):
    """Decide retry or dead-letter for every failed attempt (always installed first)."""

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        if outcome.kind != "fail" or outcome.error is None:
            return
        from stem.worker.process_pool import RemoteTaskError

        task: Task[..., object] = ctx.state["task"]
        policy, error = task.retry, outcome.error
        if (
            isinstance(error, HardTimeLimitExceeded)
            and HardTimeLimitExceeded not in policy.retry_on
        ):
            outcome.kind, outcome.reason = "bury", DeadReason.HARD_TIME_LIMIT.value
            return
        if isinstance(error, RemoteTaskError):
            retryable = error.retryable
        else:
            retryable = policy.retryable(error)
        if not retryable:
            outcome.kind, outcome.reason = "bury", DeadReason.NOT_RETRYABLE.value
        elif ctx.attempt >= policy.max_retries:
            outcome.kind, outcome.reason = "bury", DeadReason.MAX_RETRIES.value
        else:
            outcome.kind = "retry"
            asked = error.retry_delay_s if isinstance(error, RemoteTaskError) else None
            if asked is not None:
                outcome.delay_s = asked
            else:
                outcome.delay_s = policy.delay_s(
                    ctx.attempt, error if isinstance(error, Retry) else None
                )


class TimeLimits(Middleware):
    """Put each job's soft and hard time limits where the runners read them.

    The task's own limits win; ``default_soft_s``/``default_hard_s`` apply to tasks
    that set none (None: no limit).
    """

    def __init__(self, default_soft_s: float | None = None, default_hard_s: float | None = None):
        self.default_soft_s = default_soft_s
        self.default_hard_s = default_hard_s

    def before_process(self, ctx: JobContext) -> None:
        task: Task[..., object] = ctx.state["task"]
        ctx.state["soft_s"] = task.soft_time_limit_s or self.default_soft_s
        ctx.state["hard_s"] = task.time_limit_s or self.default_hard_s
