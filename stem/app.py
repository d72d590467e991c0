"""``Stem``: the application object. Register tasks on it, enqueue jobs through it.

::

    app = stem.Stem()                      # Redis URL from $STEM_REDIS_URL

    @app.task(max_retries=5)
    def send_email(to: str) -> None: ...

    handle = send_email.enqueue("a@example.com")
    handle.result(timeout_s=10)

Every setting is a constructor argument; an unknown keyword is a ``TypeError`` at once
(typos are not silently dropped).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, overload

from stem._async import in_thread
from stem.broker import MAX_DELAY_S, RESULT_TTL_S, LimitSpec, NewJob
from stem.broker.keys import check_name
from stem.config import resolve_redis_url
from stem.envelope import encode_fields, encode_many, new_job_id, new_job_ids
from stem.errors import BrokerUnavailable, ConfigError, EnqueueIncomplete
from stem.handle import JobHandle
from stem.limits import LOCK, lock_spec, spec
from stem.middleware.base import Middleware, OutgoingJob
from stem.observe.metrics import Meters
from stem.observe.tracing import Tracing
from stem.signing import Signer
from stem.task import Pool, RetryPolicy, Task, make_task

if TYPE_CHECKING:
    from stem.broker import RedisBroker
    from stem.schedule.declare import ScheduleOptions
    from stem.schedule.entries import Entry

_T = TypeVar("_T", bound="Task[Any, Any] | str")


class Stem:
    """A stem application: task registry, settings, and the producer API.

    ``redis_url`` falls back to ``$STEM_REDIS_URL`` (then to the URL file of a running
    ``stem supervise``). The broker connection opens lazily on first use and is shared by
    threads; ``close()`` releases it.

    ``signing_keys`` (key id -> HMAC secret bytes, or Ed25519 key) turns payload signing
    on: every job this app enqueues is signed with ``signing_key_id``'s key, and its
    workers refuse (dead-letter ``bad-signature``) any job not signed by one of the keys.
    Without it, ``$STEM_SIGNING_KEYS`` and ``$STEM_SIGNING_KEY_ID`` are read (see
    :mod:`stem.signing`); with neither, signing is off and workers accept unsigned jobs.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        namespace: str = "stem",
        default_queue: str = "default",
        default_pool: Pool | str = Pool.PROCESSES,
        retry: RetryPolicy | None = None,
        lease_s: float = 30.0,
        max_deliveries: int = 5,
        result_ttl_s: int = RESULT_TTL_S,
        idempotency_ttl_s: int = 86_400,
        dlq_maxlen: int = 100_000,
        dlq_retention_s: int = 14 * 86_400,
        middleware: Sequence[Middleware] = (),
        signing_keys: Mapping[str, Any] | None = None,
        signing_key_id: str | None = None,
        durable_enqueue_replicas: int = 0,
        durable_enqueue_timeout_s: float = 1.0,
    ) -> None:
        if lease_s <= 0:
            raise ConfigError(f"lease_s must be > 0, got {lease_s}")
        if result_ttl_s < 0:
            raise ConfigError(f"result_ttl_s must be >= 0, got {result_ttl_s}")
        if max_deliveries < 1:
            raise ConfigError(f"max_deliveries must be >= 1, got {max_deliveries}")
        if durable_enqueue_replicas < 0 or durable_enqueue_timeout_s <= 0:
            raise ConfigError(
                "durable_enqueue_replicas must be >= 0 and durable_enqueue_timeout_s > 0, "
                f"got {durable_enqueue_replicas} and {durable_enqueue_timeout_s}"
            )
        self.durable_enqueue_replicas = durable_enqueue_replicas
        self.durable_enqueue_timeout_s = durable_enqueue_timeout_s
        self.redis_url = redis_url
        self.namespace = namespace
        self.default_queue = default_queue
        self.default_pool = Pool(default_pool)
        self.retry = retry or RetryPolicy()
        self.lease_s = lease_s
        self.max_deliveries = max_deliveries
        self.result_ttl_s = result_ttl_s
        self.idempotency_ttl_s = idempotency_ttl_s
        self.dlq_maxlen = dlq_maxlen
        self.dlq_retention_s = dlq_retention_s
        self.middleware: list[Middleware] = list(middleware)
        if not any(isinstance(m, Tracing) for m in self.middleware):
            # Producer spans and trace headers; a no-op until a tracer provider is set.
            self.middleware.insert(0, Tracing())
        if not any(isinstance(m, Meters) for m in self.middleware):
            # "Messages sent" (and the worker's job meters); a no-op until a meter
            # provider is set (OTEL_METRICS_EXPORTER).
            self.middleware.append(Meters())
        self.tasks: dict[str, Task[Any, Any]] = {}
        #: Signs what this app enqueues and verifies what its workers run (None: off).
        self.signer: Signer | None = (
            Signer(signing_keys, signing_key_id) if signing_keys is not None else Signer.from_env()
        )
        if signing_keys is None and signing_key_id is not None and self.signer is None:
            raise ConfigError("signing_key_id needs signing_keys (or $STEM_SIGNING_KEYS)")
        self._broker: RedisBroker | None = None
        self._lock = threading.Lock()
        self.schedules: list[Entry] = []
        self.named_limits: dict[str, LimitSpec] = {}

    # -- broker ----------------------------------------------------------------------

    @property
    def broker(self) -> RedisBroker:
        """The broker, connected on first use."""
        if self._broker is None:
            with self._lock:
                if self._broker is None:
                    self._broker = self._open_broker()
        return self._broker

    def _open_broker(self) -> RedisBroker:
        # redis-py is imported here, not with the app: a process-pool child loads the app
        # for its tasks and never talks to Redis.
        from stem.broker import RedisBroker

        url = resolve_redis_url(self.redis_url)
        if url is None:
            raise ConfigError(
                "no Redis URL: pass redis_url=, set STEM_REDIS_URL or use --redis-url "
                "(or run `stem supervise`, which starts an embedded Redis)"
            )
        return RedisBroker(
            url,
            namespace=self.namespace,
            result_ttl_s=self.result_ttl_s,
            dlq_maxlen=self.dlq_maxlen,
            dlq_retention_s=self.dlq_retention_s,
            enqueue_replicas=self.durable_enqueue_replicas,
            enqueue_wait_ms=max(1, round(self.durable_enqueue_timeout_s * 1000)),
        )

    def connect(self, redis_url: str, *, namespace: str | None = None) -> None:
        """Point the app at ``redis_url`` (and ``namespace``), closing any open connection."""
        self.close()
        self.redis_url = redis_url
        if namespace is not None:
            self.namespace = namespace

    def close(self) -> None:
        """Close the broker connection; the next use reopens it."""
        with self._lock:
            if self._broker is not None:
                self._broker.close()
                self._broker = None

    # -- tasks -----------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[..., Any], /) -> Task[Any, Any]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        max_retries: int | None = None,
        retry_on: tuple[type[BaseException], ...] | None = None,
        dont_retry_on: tuple[type[BaseException], ...] | None = None,
        backoff_base_s: float | None = None,
        backoff_cap_s: float | None = None,
        soft_time_limit_s: float | None = None,
        time_limit_s: float | None = None,
        pool: Pool | str | None = None,
        log_events: bool = True,
        rate_limit: str | None = None,
        concurrency_limit: int | None = None,
        limit_key: str | None = None,
        lock: str | None = None,
        limits: Sequence[str] = (),
        keep_result_s: int | None = None,
    ) -> Callable[[Callable[..., Any]], Task[Any, Any]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        max_retries: int | None = None,
        retry_on: tuple[type[BaseException], ...] | None = None,
        dont_retry_on: tuple[type[BaseException], ...] | None = None,
        backoff_base_s: float | None = None,
        backoff_cap_s: float | None = None,
        soft_time_limit_s: float | None = None,
        time_limit_s: float | None = None,
        pool: Pool | str | None = None,
        log_events: bool = True,
        rate_limit: str | None = None,
        concurrency_limit: int | None = None,
        limit_key: str | None = None,
        lock: str | None = None,
        limits: Sequence[str] = (),
        keep_result_s: int | None = None,
    ) -> Task[Any, Any] | Callable[[Callable[..., Any]], Task[Any, Any]]:
        """Register a sync or async function as a task (``@app.task`` or ``@app.task(...)``).

        ``name`` defaults to ``module.qualname``; ``queue`` to the app's default queue;
        ``priority`` is 0-9 (higher runs first). Retry options override the app's
        ``RetryPolicy``. ``soft_time_limit_s`` raises ``SoftTimeLimitExceeded`` inside
        the task; ``time_limit_s`` kills it (process pool) or cancels it (async).
        ``pool`` is ``async`` for async functions, ``processes`` (default) or ``threads``.
        ``log_events=False`` leaves out the worker's INFO line per job event (chatty tasks).

        Limits, across every worker (see docs/guides/rate-limits.md): ``rate_limit``
        (``"10/s"``, ``"100/m"``, ``"5/h"``, burst ``"10/s+5"``), ``concurrency_limit``
        (at most N held at once), per key with ``limit_key="{tenant}"``; ``lock=
        "sync:{account_id}"`` (one at a time per key); ``limits=["stripe"]`` names limits
        defined with :meth:`limit`. Key templates are resolved from the job's arguments
        at enqueue time.

        ``keep_result_s`` is how long a settled job's record (state, result or error,
        times) stays readable (``handle.result()``, ``stem result get``); the app's
        ``result_ttl_s`` (an hour) when None. With 0 nothing is kept once the job settles,
        except for a ``handle.result()`` blocked on it at that moment, which still gets
        its outcome. It applies to failed and dead jobs too (the dead-letter entry keeps
        the envelope for replay either way).
        """
        if keep_result_s is not None and keep_result_s < 0:
            raise ConfigError(f"keep_result_s must be >= 0, got {keep_result_s}")
        changes = {
            k: v
            for k, v in {
                "max_retries": max_retries,
                "retry_on": retry_on,
                "dont_retry_on": dont_retry_on,
                "backoff_base_s": backoff_base_s,
                "backoff_cap_s": backoff_cap_s,
            }.items()
            if v is not None
        }

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task = make_task(
                self,
                func,
                name=name,
                queue=queue,
                priority=priority,
                retry=self.retry,
                retry_changes=changes,
                soft_time_limit_s=soft_time_limit_s,
                time_limit_s=time_limit_s,
                pool=pool,
                limit_options={
                    "rate_limit": rate_limit,
                    "concurrency_limit": concurrency_limit,
                    "limit_key": limit_key,
                    "lock": lock,
                    "limits": limits,
                },
            )
            if task.name in self.tasks:
                raise ConfigError(f"a task named {task.name!r} is already registered")
            task.log_events = log_events
            task.keep_result_s = keep_result_s
            self.tasks[task.name] = task
            return task

        return register(fn) if fn is not None else register

    # -- limits ----------------------------------------------------------------------

    def limit(
        self, name: str, *, rate: str | None = None, concurrency: int | None = None, burst: int = 0
    ) -> LimitSpec:
        """Define a limit that tasks share (``@app.task(limits=[name])``): a ``rate``
        (``"25/s"``) and/or a ``concurrency``, across every worker."""
        if name in self.named_limits or name in self.tasks:
            raise ConfigError(f"a limit or task named {name!r} is already defined")
        self.named_limits[name] = spec(name, rate=rate, concurrency=concurrency, burst=burst)
        return self.named_limits[name]

    def limit_specs(self) -> dict[str, LimitSpec]:
        """Every limit definition in code: named ones, each task's own, locks."""
        out = dict(self.named_limits)
        for task in self.tasks.values():
            if task.limits.own is not None:
                out[task.limits.own.name] = task.limits.own
            if task.limits.lock is not None:
                out[LOCK] = lock_spec()
        return out

    # -- enqueue ---------------------------------------------------------------------

    def enqueue(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay_s: float | None = None,
        eta: dt.datetime | None = None,
        idempotency_key: str | None = None,
        idempotency_ttl_s: int | None = None,
        job_id: str | None = None,
        headers: dict[str, str] | None = None,
        keep_result_s: int | None = None,
    ) -> JobHandle:
        """Enqueue one job of ``task`` (a Task or a task name) in one round trip.

        ``delay_s`` or ``eta`` (an aware datetime) delay it; ``idempotency_key`` makes a
        repeat within ``idempotency_ttl_s`` return the first job instead of a second one;
        ``job_id`` picks the id (a repeat of a live id is also idempotent);
        ``keep_result_s`` overrides the task's (see :meth:`task`) for this job.
        """
        if keep_result_s is not None and keep_result_s < 0:
            raise ConfigError(f"keep_result_s must be >= 0, got {keep_result_s}")
        out = self._outgoing(task, args, kwargs, queue, priority, delay_s, eta, job_id, headers)
        ttl = idempotency_ttl_s if idempotency_ttl_s is not None else self.idempotency_ttl_s
        if idempotency_key is not None and not _ONE_LINE.match(idempotency_key):
            raise ConfigError("idempotency_key must be 1-512 characters without line breaks")
        new = self._new_job(
            out, idempotency_key or "", ttl, chosen_id=job_id is not None, keep_s=keep_result_s
        )
        [(jid, created)] = self.broker.enqueue(out.queue, [new])
        for m in self.middleware:
            m.after_enqueue(out, created)
        return JobHandle(self, jid, out.queue, created)

    def enqueue_many(
        self,
        task: Task[Any, Any] | str,
        calls: Iterable[Sequence[Any]],
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay_s: float | None = None,
        idempotency_key: str | None = None,
        idempotency_ttl_s: int | None = None,
    ) -> list[JobHandle]:
        """One job of ``task`` per positional-argument tuple in ``calls``.

        Each job passes through the middleware like one from ``enqueue``: ``before_enqueue``
        may re-route it, and the jobs go out in one broker call per queue they end up in;
        ``after_enqueue`` sees every job once it is written. Every argument is encoded
        before anything is sent: one bad argument refuses the whole batch and nothing is
        written. A large batch goes out in chunks; if Redis refuses some of them (e.g.
        ``maxmemory``), ``EnqueueIncomplete`` says how many jobs were written. With
        ``idempotency_key``, job ``i`` gets the key ``<key>:<i>``, so repeating the same
        call (same calls, same order) within ``idempotency_ttl_s`` enqueues each job
        exactly once and returns every handle.
        """
        ttl = idempotency_ttl_s if idempotency_ttl_s is not None else self.idempotency_ttl_s
        if idempotency_key is not None and not _ONE_LINE.match(idempotency_key):
            raise ConfigError("idempotency_key must be 1-512 characters without line breaks")
        try:
            return self._enqueue_many(task, calls, queue, priority, delay_s, idempotency_key, ttl)
        except EnqueueIncomplete as exc:
            hint = (
                "repeat the call with the same idempotency_key to enqueue the rest exactly once"
                if idempotency_key is not None
                else "give enqueue_many an idempotency_key so that a repeat cannot duplicate jobs"
            )
            raise EnqueueIncomplete(f"{exc}; {hint}", written=exc.written, total=exc.total) from exc

    def _enqueue_many(
        self,
        task: Task[Any, Any] | str,
        calls: Iterable[Sequence[Any]],
        queue: str | None,
        priority: int | None,
        delay_s: float | None,
        idempotency_key: str | None,
        ttl: int,
    ) -> list[JobHandle]:
        base = self._outgoing(
            task, (), None, queue, priority, delay_s, None, None, None, hooks=False
        )
        calls = list(calls)
        outs = [
            OutgoingJob(jid, base.task, args if isinstance(args, list | tuple) else list(args),
                {}, base.queue, base.priority, base.eta_ms, {})
            for jid, args in zip(new_job_ids(len(calls)), calls, strict=True)
        ]  # fmt: skip
        before = self._enqueue_hooks("before_enqueue")
        if before:
            for out in outs:
                for hook in before:
                    hook(out)  # may re-route it: jobs are grouped by queue below
        envelopes = encode_many(outs, time.time_ns() // 1_000_000)
        if self.signer is not None:
            sign = self.signer.sign
            envelopes = [sign(o.job_id, o.queue, e) for o, e in zip(outs, envelopes, strict=True)]
        news = [
            NewJob(
                o.job_id,
                env,
                o.priority,
                o.eta_ms,
                _bulk_key(idempotency_key, i),
                ttl,
                limits=self._limit_refs(o),
                keep_result_s=self._keep_s(o.task),
            )
            for i, (o, env) in enumerate(zip(outs, envelopes, strict=True))
        ]
        by_queue: dict[str, list[int]] = {}
        for i, out in enumerate(outs):
            by_queue.setdefault(out.queue, []).append(i)
        for name in by_queue:  # a bad re-route refuses the batch before anything is written
            check_name("queue name", name)
        after = self._enqueue_hooks("after_enqueue")
        handles: list[JobHandle | None] = [None] * len(outs)
        written = 0
        for queue_name, indexes in by_queue.items():
            pairs = self._enqueue_group(queue_name, [news[i] for i in indexes], written, len(outs))
            written += len(indexes)
            for i, (jid, created) in zip(indexes, pairs, strict=True):
                handles[i] = JobHandle(self, jid, queue_name, created)
                for hook in after:
                    hook(outs[i], created)
        return [h for h in handles if h is not None]

    def _enqueue_group(
        self, queue: str, news: list[NewJob], written: int, total: int
    ) -> list[tuple[str, bool]]:
        """One broker call for one queue's share of a bulk enqueue; a refusal after other
        queues' shares were written says how many jobs of the whole batch were."""
        try:
            return self.broker.enqueue(queue, news)
        except EnqueueIncomplete as exc:
            if written == 0 and exc.total == total:
                raise
            done = written + exc.written
            message = f"{done} of {total} jobs were enqueued; queue {queue!r} got part: {exc}"
            raise EnqueueIncomplete(message, written=done, total=total) from exc
        except BrokerUnavailable as exc:
            if written == 0:
                raise
            message = f"{written} of {total} jobs were enqueued; queue {queue!r} got none: {exc}"
            raise EnqueueIncomplete(message, written=written, total=total) from exc

    def _enqueue_hooks(self, name: str) -> list[Callable[..., None]]:
        """The ``name`` hook of each middleware that overrides it, in registration order."""
        return [
            getattr(m, name)
            for m in self.middleware
            if getattr(type(m), name) is not getattr(Middleware, name)
        ]

    async def enqueue_async(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> JobHandle:
        """``enqueue`` for trio or asyncio code (runs the blocking call in a thread)."""
        return await in_thread(self.enqueue, task, args, kwargs, **options)

    def job(self, job_id: str, queue: str | None = None) -> JobHandle:
        """A handle to an existing job; without ``queue``, every known queue is searched."""
        if queue is None:
            record = self.broker.find_job(job_id)
            queue = record.queue if record is not None else self.default_queue
        return JobHandle(self, job_id, queue, created=False)

    def _outgoing(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        queue: str | None,
        priority: int | None,
        delay_s: float | None,
        eta: dt.datetime | None,
        job_id: str | None,
        headers: dict[str, str] | None,
        *,
        hooks: bool = True,
    ) -> OutgoingJob:
        if job_id is not None:
            check_name("job id", job_id)
        registered = self.tasks.get(task) if isinstance(task, str) else task
        name = task if isinstance(task, str) else task.name
        if priority is None:
            priority = registered.priority if registered is not None else 0
        elif not 0 <= priority <= 9:
            raise ConfigError(f"priority must be 0-9, got {priority}")
        out = OutgoingJob(
            job_id=job_id or new_job_id(),
            task=name,
            args=args if isinstance(args, list | tuple) else list(args),
            kwargs=kwargs or {},
            queue=queue or (registered.queue if registered is not None else self.default_queue),
            priority=priority,
            eta_ms=_eta_ms(delay_s, eta),
            headers=dict(headers) if headers else {},
        )
        if hooks:
            for m in self.middleware:
                m.before_enqueue(out)
        return out

    def _limit_refs(self, out: OutgoingJob) -> str:
        """The limit instances of ``out`` ('' when its task has none or is not known here)."""
        task = self.tasks.get(out.task)
        return task.limit_refs(out.args, out.kwargs) if task is not None else ""

    def _keep_s(self, task_name: str) -> int | None:
        """The ``keep_result_s`` of a task known here (None: the worker's default)."""
        task = self.tasks.get(task_name)
        return task.keep_result_s if task is not None else None

    def _new_job(
        self,
        out: OutgoingJob,
        idempotency_key: str,
        ttl_s: int,
        *,
        chosen_id: bool = False,
        keep_s: int | None = None,
    ) -> NewJob:
        envelope = encode_fields(
            out.job_id,
            out.task,
            out.args,
            out.kwargs,
            out.queue,
            out.priority,
            time.time_ns() // 1_000_000,
            out.eta_ms,
            out.headers,
        )
        if self.signer is not None:
            envelope = self.signer.sign(out.job_id, out.queue, envelope)
        return NewJob(
            out.job_id,
            envelope,
            out.priority,
            out.eta_ms,
            idempotency_key,
            ttl_s,
            chosen_id,
            self._limit_refs(out),
            keep_s if keep_s is not None else self._keep_s(out.task),
        )

    # -- schedules -------------------------------------------------------------------

    @overload
    def schedule(
        self, task: Task[Any, Any] | str, /, **options: Unpack[ScheduleOptions]
    ) -> Entry: ...

    @overload
    def schedule(
        self, task: None = None, /, **options: Unpack[ScheduleOptions]
    ) -> Callable[[_T], _T]: ...

    def schedule(
        self, task: Task[Any, Any] | str | None = None, /, **options: Unpack[ScheduleOptions]
    ) -> Entry | Callable[[_T], _T]:
        """Declare a beat entry that enqueues ``task`` (a Task or a task name) on a schedule.

        ``app.schedule(task, every_s=30)`` returns the :class:`~stem.schedule.Entry`;
        ``@app.schedule(cron="0 * * * *")`` above ``@app.task`` returns the task unchanged.
        Options are the keys of a ``[[schedule]]`` table (see ``stem.schedule.declare``); ``stem
        beat`` syncs ``app.schedules`` to the schedule store. A bad or duplicate entry
        raises :class:`~stem.schedule.ScheduleEntryError` naming it.
        """
        from stem.schedule.declare import check_new_entry, declare_entry

        def add(target: Task[Any, Any] | str) -> Entry:
            entry = declare_entry(target, options)
            check_new_entry(self.schedules, entry)
            self.schedules.append(entry)
            return entry

        if task is not None:
            return add(task)

        def decorate(target: _T) -> _T:
            add(target)
            return target

        return decorate


_ONE_LINE = re.compile(r"^[^\r\n]{1,512}$")


def _bulk_key(idempotency_key: str | None, index: int) -> str:
    """Job ``index``'s idempotency key in a bulk enqueue (``<key>:<index>``), or none."""
    return f"{idempotency_key}:{index}" if idempotency_key is not None else ""


def _eta_ms(delay_s: float | None, eta: dt.datetime | None) -> int:
    """The ready-at epoch ms of a job (0: now), checked against ``MAX_DELAY_S``."""
    if delay_s is not None and eta is not None:
        raise ConfigError("give delay_s or eta, not both")
    if delay_s is not None:
        if not (isinstance(delay_s, int | float) and 0 <= delay_s <= MAX_DELAY_S):
            raise ConfigError(
                f"delay_s must be a number from 0 to {MAX_DELAY_S} (ten years), got {delay_s!r}"
            )
        return 0 if delay_s == 0 else time.time_ns() // 1_000_000 + int(delay_s * 1000)
    if eta is not None:
        if eta.tzinfo is None:
            raise ConfigError("eta must be a timezone-aware datetime")
        eta_ms = int(eta.timestamp() * 1000)
        if eta_ms - time.time_ns() // 1_000_000 > MAX_DELAY_S * 1000:
            raise ConfigError(f"eta must be at most ten years ahead, got {eta.isoformat()}")
        return max(eta_ms, 0)
    return 0
