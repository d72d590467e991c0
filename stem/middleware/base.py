"""The middleware base: no-op hooks around enqueue, process, retry and dead-letter.

Subclass ``Middleware`` and override what you need; register it with
``Stem(middleware=[...])``. Hooks run in registration order (``after_*`` hooks in reverse
order). Retries, time limits, metrics and tracing are middleware, not ``if``s in the
worker loop. A hook that raises during enqueue aborts the enqueue (nothing is written);
a hook that raises in a worker is logged and the job is settled as if it had not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stem.outcome import Outcome

if TYPE_CHECKING:
    from stem.context import JobContext


@dataclass(slots=True)
class OutgoingJob:
    """A job about to be enqueued; ``before_enqueue`` hooks may change headers or routing."""

    job_id: str
    task: str
    args: list[Any] | tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    priority: int
    eta_ms: int
    headers: dict[str, str] = field(default_factory=dict)


class Middleware:
    """Base class with a no-op for every hook."""

    def active(self) -> bool:
        """Whether the worker hooks do anything now. A worker asks when it admits a job,
        at most every second, and skips the worker hooks of a middleware that says no
        until it says yes (``Tracing`` and ``Meters`` while no provider is configured);
        all of one job's hooks come from the same answer. Producer hooks are always
        called."""
        return True

    def before_enqueue(self, job: OutgoingJob) -> None:
        """Called before a job is written; may change ``job.headers``/``queue``/``priority``."""

    def after_enqueue(self, job: OutgoingJob, created: bool) -> None:
        """Called after a job was written (``created`` is False for an idempotent repeat)."""

    def before_process(self, ctx: JobContext) -> None:
        """Called in the worker just before the task runs."""

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        """Called after the task ran (or failed); may turn ``outcome`` into another one
        (``stem.outcome.Outcome``: ``outcome.retry(...)``, ``outcome.bury(...)``)."""

    def on_cancelled(self, ctx: JobContext) -> None:
        """Called instead of ``after_process`` when the run was cancelled before it
        returned (revoked while running, or the worker stopping without waiting): there
        is no outcome; the job is acked as revoked, or handed back to run again."""

    def on_retry(self, ctx: JobContext, outcome: Outcome) -> None:
        """Called when a job is about to be scheduled for another attempt."""

    def on_dead_letter(self, ctx: JobContext | None, reason: str, error: str) -> None:
        """Called when a job is about to be dead-lettered (ctx is None for a bad payload)."""
