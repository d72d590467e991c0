"""The job context: what a running task can know about its own job.

Inside a task, ``stem.current_job()`` returns the ``JobContext`` of the job being run
(job id, attempt, deliveries, headers). It works in async tasks, thread-pool tasks and
process-pool children alike.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("stem_current_job")


@dataclass(slots=True)
class JobContext:
    """One delivery of one job, as seen by the task and by middleware.

    ``attempt`` counts from 0 (the first run) and grows with each retry; ``deliveries``
    counts hand-outs of the current attempt (above 1 only after a worker died).
    """

    job_id: str
    task: str
    queue: str
    attempt: int
    deliveries: int
    args: list[Any]
    kwargs: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    enq_ms: int = 0
    ready_ms: int = 0  # when it became ready to run: its stream entry's time (Redis clock)
    started_monotonic: float = 0.0  # when the executor admitted it (``time.monotonic()``)
    state: dict[str, Any] = field(default_factory=dict)


def current_job() -> JobContext:
    """The context of the job the calling task is running; LookupError outside a task."""
    return _current.get()


def set_current(ctx: JobContext) -> contextvars.Token[JobContext]:
    """Make ``ctx`` the current job (the worker calls this around each task)."""
    return _current.set(ctx)


def reset_current(token: contextvars.Token[JobContext]) -> None:
    """Undo :func:`set_current`."""
    _current.reset(token)
