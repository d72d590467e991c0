"""What processing decided for one job: a ``Verdict`` and the data that goes with it.

One type for the whole path from a task's return (or raise) to the broker::

    task returns ──> Outcome.complete(result JSON) ───────────────────────> COMPLETE
    task raises ───> Outcome.failed(error) ──(Retries: RetryPolicy.decide)──> RETRY | BURY
    revoked while it runs (``stem job revoke --terminate``) ─────────────────> REVOKED

``after_process`` middleware hooks see the ``Outcome`` and may turn it into another one
(``outcome.retry(...)``, ``outcome.bury(...)``); the executor then builds the broker's
``Settlement`` from it in one place. ``FAILED`` is the only verdict that is not settled
as it is: the ``Retries`` middleware always decides it, and one still undecided when
the hooks are done is buried as ``not-retryable``. A new verdict (a deferral, a revoke)
is a member here, a branch in ``stem.worker.execute`` and in the broker's ``settle``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from stem.states import DeadReason, JobState


class Verdict(enum.Enum):
    """How a job's attempt ends."""

    COMPLETE = "complete"  # the task returned: store the result
    FAILED = "failed"  # the task raised; retry or bury is not decided yet
    RETRY = "retry"  # run it again after ``delay_s``
    BURY = "bury"  # dead-letter it with ``reason``
    REVOKED = "revoked"  # an operator revoked it while it ran: ack only (record says so)


#: The verdicts a broker can settle (``FAILED`` is decided before settling).
SETTLED_VERDICTS = frozenset({Verdict.COMPLETE, Verdict.RETRY, Verdict.BURY, Verdict.REVOKED})


@dataclass(slots=True)
class Outcome:
    """What processing decided for one job; ``after_process`` hooks may change it.

    ``result`` is the task's result as JSON text (``COMPLETE``); ``error`` the exception
    the task raised (None on success); ``delay_s`` applies to ``RETRY``; ``reason`` (a
    ``DeadReason`` value) and ``state`` (the terminal state) to ``BURY``.
    """

    verdict: Verdict
    result: str | None = None
    error: BaseException | None = None
    delay_s: float = 0.0
    reason: str = ""
    state: JobState = JobState.FAILED

    @classmethod
    def complete(cls, result: str) -> Outcome:
        """The task returned; ``result`` is its JSON encoding."""
        return cls(Verdict.COMPLETE, result=result)

    @classmethod
    def failed(cls, error: BaseException) -> Outcome:
        """The task raised ``error``; the retry policy decides what follows."""
        return cls(Verdict.FAILED, error=error)

    def retry(self, delay_s: float) -> None:
        """Run the job again after ``delay_s`` seconds."""
        self.verdict, self.delay_s = Verdict.RETRY, delay_s

    def bury(self, reason: DeadReason | str, state: JobState = JobState.FAILED) -> None:
        """Dead-letter the job with ``reason``, leaving it in terminal ``state``."""
        self.verdict, self.state = Verdict.BURY, state
        self.reason = reason.value if isinstance(reason, DeadReason) else reason
