"""Tasks: functions registered with ``@app.task``, and their retry policy.

A ``Task`` wraps a sync or async function. Calling it runs the function here and now;
``task.enqueue(...)`` sends a job to a worker. Its options (queue, priority, retries, time
limits, pool) are read by the worker when it runs the job.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from stem.errors import (
    ConfigError,
    HardTimeLimitExceeded,
    RemoteTaskError,
    Retry,
    SerializationError,
    is_instance,
)
from stem.limits import TaskLimits, check_names, spec, template_fields
from stem.outcome import Outcome, Verdict
from stem.states import DeadReason

if TYPE_CHECKING:
    from stem.app import Stem
    from stem.handle import JobHandle

P = ParamSpec("P")
R = TypeVar("R")


class Pool(enum.Enum):
    """Where a task runs inside the worker."""

    ASYNC = "async"  # a trio task in the worker process (async functions only)
    THREADS = "threads"  # a thread of the worker process (sync functions)
    PROCESSES = "processes"  # a pool child process: can be killed at a hard time limit

    # A member is equal only to itself, so hashing by identity is right, and it is a C
    # slot where Enum's is a Python call (the executor looks a runner up per job).
    __hash__ = object.__hash__


@dataclass(frozen=True)
class RetryPolicy:
    """When and how soon a failed job runs again.

    Exponential backoff with full jitter: the delay before retry ``n`` (0-based) is
    uniform in ``[0, min(backoff_cap_s, backoff_base_s * 2**n)]``. ``raise stem.Retry(
    delay_s=...)`` picks the delay itself. An exception in ``dont_retry_on``, or not in
    ``retry_on``, is not retried; neither is any exception once ``max_retries`` is spent.
    A hard time limit is not retried unless ``retry_on`` lists ``HardTimeLimitExceeded``
    (a runaway task would only burn the pool again). An error raised in a pool child
    (``RemoteTaskError``) is judged by its exception type names exactly as it would be
    here: the child only reports, this policy decides.
    """

    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    dont_retry_on: tuple[type[BaseException], ...] = ()
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base_s < 0 or self.backoff_cap_s < 0:
            raise ConfigError("backoff_base_s and backoff_cap_s must be >= 0")

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` is of a kind that may be retried (attempts aside)."""
        if is_instance(error, (Retry,)):
            return True
        if is_instance(error, (SerializationError, *self.dont_retry_on)):  # never fixes itself
            return False
        return is_instance(error, self.retry_on)

    def delay_s(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait before the retry that follows attempt ``attempt`` (0-based)."""
        if isinstance(error, Retry) and error.delay_s is not None:
            return max(0.0, error.delay_s)
        if isinstance(error, RemoteTaskError) and error.retry_delay_s is not None:
            return max(0.0, error.retry_delay_s)
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** min(attempt, 62)))
        return self.rng.uniform(0.0, ceiling)

    def decide(self, outcome: Outcome, attempt: int) -> None:
        """Turn a ``FAILED`` outcome of attempt ``attempt`` into a retry or a bury."""
        error = outcome.error
        if outcome.verdict is not Verdict.FAILED or error is None:
            return
        if (
            is_instance(error, (HardTimeLimitExceeded,))
            and HardTimeLimitExceeded not in self.retry_on
        ):
            outcome.bury(DeadReason.HARD_TIME_LIMIT)
        elif not self.retryable(error):
            outcome.bury(DeadReason.NOT_RETRYABLE)
        elif attempt >= self.max_retries:
            outcome.bury(DeadReason.MAX_RETRIES)
        else:
            outcome.retry(self.delay_s(attempt, error))


#: How many argument shapes ``Task.bind_check`` remembers per task.
_MAX_SHAPES = 64
_NO_NAMES: frozenset[str] = frozenset()


class Task(Generic[P, R]):
    """A registered task. Call it to run the function locally; ``enqueue`` to send a job."""

    #: Whether the worker logs an INFO line per event of this task's jobs.
    log_events: bool = True
    #: Seconds its settled jobs' records are kept (None: the app's ``result_ttl_s``).
    keep_result_s: int | None = None

    def __init__(
        self,
        app: Stem,
        fn: Callable[P, R],
        *,
        name: str,
        queue: str,
        priority: int,
        retry: RetryPolicy,
        soft_time_limit_s: float | None,
        time_limit_s: float | None,
        pool: Pool,
        limits: TaskLimits | None = None,
    ) -> None:
        self.app = app
        #: The limits its jobs are under (resolved per job at enqueue time).
        self.limits = limits or TaskLimits(name)
        self.fn = fn
        self.name = name
        self.queue = queue
        self.priority = priority
        self.retry = retry
        self.soft_time_limit_s = soft_time_limit_s
        self.time_limit_s = time_limit_s
        self.pool = pool
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        # Whether arguments fit depends only on their shape (how many positional, which
        # keyword names), never on their values: bind_check remembers each shape's verdict.
        self._shapes: dict[tuple[int, frozenset[str]], str | None] = {}
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<stem.Task {self.name} queue={self.queue} pool={self.pool.value}>"

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle:
        """Send a job that runs this task with these arguments; return its handle.

        Arguments must be JSON-serialisable: one that is not raises ``SerializationError``
        naming it, and nothing is written. Use :meth:`enqueue_with` for options
        (delay, priority, idempotency key, ...).
        """
        return self.app.enqueue(self, args, kwargs)

    def enqueue_with(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay_s: float | None = None,
        eta: dt.datetime | None = None,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        headers: dict[str, str] | None = None,
        keep_result_s: int | None = None,
    ) -> Callable[P, JobHandle]:
        """``enqueue`` with options: ``task.enqueue_with(delay_s=60)(42, size=800)``.

        Stem's ``apply_async``: the options are checked when the returned function is
        called, as ``Stem.enqueue`` checks them (``delay_s`` or ``eta``, an aware
        datetime, not both; ``job_id`` picks the id; a repeat of an ``idempotency_key``
        returns the first job with ``created=False``; ``keep_result_s`` overrides the
        task's retention for this job, 0 keeps nothing once it settled). The arguments
        stay typed as the task's own.
        """

        def send(*args: P.args, **kwargs: P.kwargs) -> JobHandle:
            return self.app.enqueue(
                self,
                args,
                kwargs,
                queue=queue,
                priority=priority,
                delay_s=delay_s,
                eta=eta,
                idempotency_key=idempotency_key,
                job_id=job_id,
                headers=headers,
                keep_result_s=keep_result_s,
            )

        return send

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle:
        """``enqueue`` for trio or asyncio code (runs the blocking call in a thread)."""
        return await self.app.enqueue_async(self, args, kwargs)

    def enqueue_many(
        self, calls: Iterable[Sequence[Any]], *, idempotency_key: str | None = None
    ) -> list[JobHandle]:
        """One job per positional-argument tuple in ``calls``, sent in one round trip.

        ``idempotency_key`` makes a repeat of the same call (after ``EnqueueIncomplete`` or
        any other failure) enqueue each job exactly once; see ``Stem.enqueue_many``.
        """
        return self.app.enqueue_many(self, calls, idempotency_key=idempotency_key)

    def limit_refs(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
        """The limit instances a job with these arguments is under ('' for none); a key
        template naming an argument the call lacks is a ``ConfigError`` naming it."""
        if self.limits.empty:
            return ""
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError:  # arguments that do not fit: the key needs them by name
            return self.limits.refs(kwargs)
        bound.apply_defaults()
        return self.limits.refs(bound.arguments)

    def bind_check(self, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Raise ``TypeError`` if ``args``/``kwargs`` do not fit the function.

        ``Signature.bind`` looks only at the number of positional arguments and the
        keyword names, so its verdict is cached per shape (a job's hot path: one dict
        lookup instead of a bind). At most ``_MAX_SHAPES`` shapes are kept, so a task
        with ``**kwargs`` called with ever-new names does not grow the cache forever.
        """
        shape = (len(args), frozenset(kwargs) if kwargs else _NO_NAMES)
        try:
            error = self._shapes[shape]
        except KeyError:
            try:
                self.signature.bind(*args, **kwargs)
                error = None
            except TypeError as exc:
                error = str(exc)
            if len(self._shapes) < _MAX_SHAPES:
                self._shapes[shape] = error
        if error is not None:
            raise TypeError(error)

    def options(self) -> dict[str, Any]:
        """The task's options, for display."""
        return {
            "name": self.name,
            "queue": self.queue,
            "priority": self.priority,
            "max_retries": self.retry.max_retries,
            "soft_time_limit_s": self.soft_time_limit_s,
            "time_limit_s": self.time_limit_s,
            "pool": self.pool.value,
        }


def make_task(
    app: Stem,
    fn: Callable[..., Any],
    *,
    name: str | None,
    queue: str | None,
    priority: int,
    retry: RetryPolicy,
    retry_changes: dict[str, Any],
    soft_time_limit_s: float | None,
    time_limit_s: float | None,
    pool: Pool | str | None,
    limit_options: dict[str, Any] | None = None,
) -> Task[Any, Any]:
    """Validate ``@app.task`` options and build the ``Task`` (one clear error per mistake)."""
    task_name = name or f"{fn.__module__}.{fn.__qualname__}"
    is_async = inspect.iscoroutinefunction(fn)
    chosen = Pool(pool) if pool is not None else (Pool.ASYNC if is_async else app.default_pool)
    if is_async and chosen is not Pool.ASYNC:
        raise ConfigError(f"task {task_name!r}: async functions run in the async pool")
    if not is_async and chosen is Pool.ASYNC:
        raise ConfigError(f"task {task_name!r}: the async pool needs an async function")
    if not 0 <= priority <= 9:
        raise ConfigError(f"task {task_name!r}: priority must be 0-9, got {priority}")
    for label, limit in (("soft_time_limit_s", soft_time_limit_s), ("time_limit_s", time_limit_s)):
        if limit is not None and limit <= 0:
            raise ConfigError(f"task {task_name!r}: {label} must be > 0, got {limit}")
    limits = _task_limits(task_name, inspect.signature(fn), **(limit_options or {}))
    return Task(
        app,
        fn,
        limits=limits,
        name=task_name,
        queue=queue or app.default_queue,
        priority=priority,
        retry=replace(retry, **retry_changes) if retry_changes else retry,
        soft_time_limit_s=soft_time_limit_s,
        time_limit_s=time_limit_s,
        pool=chosen,
    )


def _task_limits(
    task: str,
    signature: inspect.Signature,
    *,
    rate_limit: str | None = None,
    concurrency_limit: int | None = None,
    limit_key: str | None = None,
    lock: str | None = None,
    limits: Sequence[str] = (),
) -> TaskLimits:
    """Check ``@app.task``'s limit options; one clear error per mistake."""
    if lock is not None and concurrency_limit is not None:
        raise ConfigError(f"task {task!r}: a lock is concurrency 1 per key: drop concurrency_limit")
    if lock is not None and limit_key is not None and rate_limit is None:
        raise ConfigError(f"task {task!r}: limit_key keys rate_limit; the lock has its own key")
    if limit_key is not None and rate_limit is None and concurrency_limit is None:
        raise ConfigError(f"task {task!r}: limit_key needs rate_limit or concurrency_limit")
    if concurrency_limit is not None and concurrency_limit < 1:
        raise ConfigError(f"task {task!r}: concurrency_limit must be >= 1")
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for template in (limit_key, lock) if not open_kwargs else ():
        for name in template_fields(template) if template is not None else ():
            if name not in signature.parameters:
                raise ConfigError(
                    f"task {task!r}: key template {template!r} names {name!r}, "
                    "which is not one of its arguments"
                )
    own = None
    if rate_limit is not None or concurrency_limit is not None:
        own = spec(task, rate=rate_limit, concurrency=concurrency_limit)
    return TaskLimits(task, own, limit_key, lock, check_names(list(limits)))
