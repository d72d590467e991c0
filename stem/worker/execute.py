"""From one delivery to one settlement: admit, run, decide, through the middleware.

A delivery that cannot run (no record, a missing or bad signature when the app has
signing keys, undecodable envelope, unknown task, arguments that do not fit the
function) is buried with its reason and never crashes the worker. The signature is
checked on the stored bytes before anything of them is decoded (``stem.signing``).
A task that raises becomes a ``FAILED`` :class:`~stem.outcome.Outcome` that the
``Retries`` middleware turns into a retry or a bury; the result must be JSON (a result
that is not is a failure that is not retried). Time limits come from the task itself.
Every settlement is built from an ``Outcome`` in :func:`_settlement`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from stem.broker import MAX_DELAY_S, Delivery, Settlement
from stem.context import JobContext
from stem.envelope import decode, dumps
from stem.errors import PayloadError, RemoteTaskError, SerializationError, describe
from stem.middleware.base import Middleware
from stem.outcome import Outcome, Verdict
from stem.signing import SignatureError
from stem.states import DeadReason, JobState

if TYPE_CHECKING:
    from stem.app import Stem
    from stem.task import Pool, Task

log = logging.getLogger("stem.worker")


class Runner(Protocol):
    """Runs a task's function somewhere (see ``pools``)."""

    #: A run that returns has waited for another thread or process, so it let trio
    #: schedule other tasks at least once (``Executed.waited``).
    hands_over: bool

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any: ...


class Executed(NamedTuple):
    """A delivery's settlement, and whether its run waited for another thread or process."""

    settlement: Settlement
    waited: bool


class Executor:
    """Turns deliveries into settlements; owns no state but counters."""

    def __init__(
        self, app: Stem, runners: Mapping[Pool, Runner], middleware: Sequence[Middleware]
    ) -> None:
        self.app = app
        self.runners = runners
        self.middleware = list(middleware)
        #: Verifies each envelope before it is decoded; None: unsigned jobs are accepted.
        self.signer = app.signer
        # Per hook, the middleware that override it and are active (``_refresh_hooks``):
        # the base no-ops and switched-off middleware cost a job nothing. Until the first
        # job asks, all of them (asking here would hide a provider set before that job).
        self._switched = [m for m in self.middleware if _overrides(m, "active")]
        self._hooked = self._hook_lists(self.middleware)
        self._recheck_at = 0.0
        #: Jobs, not attempts: ``processed`` completed, ``failed`` dead-lettered (at the
        #: end of their retries or refused), ``retried`` attempts that will run again.
        self.processed = 0
        self.failed = 0
        self.retried = 0
        #: The same three counts per queue: [processed, failed, retried].
        self.by_queue: dict[str, list[int]] = {}

    def _refresh_hooks(self) -> None:
        """Rebuild the hook lists from the middleware active now."""
        off = {id(m) for m in self._switched if not _asks_active(m)}
        self._hooked = self._hook_lists([m for m in self.middleware if id(m) not in off])
        # From after the answers: the providers' own lookups (``PROVIDER_RECHECK_S``, the
        # same second) are then due again by the next ask, so a provider set meanwhile
        # is seen within one second, not two.
        self._recheck_at = time.monotonic() + HOOKS_RECHECK_S

    @staticmethod
    def _hook_lists(on: Sequence[Middleware]) -> dict[str, list[Callable[..., None]]]:
        """Per hook, those of ``on`` that override it; the hooks that end a job in
        reverse order (the first registered wraps the others)."""
        hooked = {
            name: [getattr(m, name) for m in on if _overrides(m, name)]
            for name in ("before_process", "on_retry", "on_dead_letter")
        }
        for name in ("after_process", "on_cancelled"):
            hooked[name] = [getattr(m, name) for m in reversed(on) if _overrides(m, name)]
        return hooked

    async def execute(self, d: Delivery) -> Settlement:
        """Run one delivery to its settlement (cancellation propagates: caller releases)."""
        return (await self.execute_job(d)).settlement

    async def execute_job(self, d: Delivery) -> Executed:
        """``execute``, and whether the run surely let trio schedule other tasks: it
        returned from a runner that hands jobs to a thread or a process. The worker's
        runners take their next job without a schedule point after such a run
        (docs/performance.md, Change 16)."""
        admitted = self._admit(d)
        if isinstance(admitted, Settlement):
            self._count(d.queue, 1)
            return Executed(admitted, waited=False)
        task, ctx = admitted
        if ctx.started_monotonic >= self._recheck_at:
            self._refresh_hooks()
        hooked = self._hooked  # this job's: all its hooks from one answer
        _call(hooked["before_process"], ctx)
        runner = self.runners[task.pool]
        waited = False
        try:
            result = await runner.run(task, ctx, task.soft_time_limit_s, task.time_limit_s)
            waited = runner.hands_over  # it returned (a raise claims no wait)
            outcome = Outcome.complete(dumps(result, f"the result of task {task.name!r}"))
        except Exception as exc:  # the task's, the runner's, or a result that is not JSON
            outcome = Outcome.failed(exc)
        except BaseException:  # cancelled (revoked, a hard stop): no outcome, hooks still end
            _call(hooked["on_cancelled"], ctx)
            raise
        _call(hooked["after_process"], ctx, outcome)
        return Executed(self._settlement(d, ctx, outcome, hooked), waited)

    def _admit(self, d: Delivery) -> tuple[Task[Any, Any], JobContext] | Settlement:
        if d.envelope is None:
            reason = DeadReason.MISSING_RECORD if d.job_id else DeadReason.UNDECODABLE
            return self._reject(d, reason, "stream entry without a job record")
        body = d.envelope
        if self.signer is not None:  # verify before anything of the envelope is decoded
            try:
                body = self.signer.verify(d.job_id or "", d.queue, d.envelope)
            except SignatureError as exc:
                return self._reject(d, DeadReason.BAD_SIGNATURE, str(exc))
        try:
            env = decode(body)
        except PayloadError as exc:
            return self._reject(d, DeadReason.UNDECODABLE, str(exc))
        task = self.app.tasks.get(env.task)
        if task is None:
            return self._reject(
                d, DeadReason.UNKNOWN_TASK, f"no task named {env.task!r} is registered"
            )
        try:
            task.bind_check(env.args, env.kwargs)
        except TypeError as exc:
            return self._reject(d, DeadReason.BAD_ARGUMENTS, f"{task.name}: {exc}")
        ctx = JobContext(
            job_id=d.job_id or env.id,
            task=task.name,
            queue=d.queue,
            attempt=d.attempt,
            deliveries=d.deliveries,
            args=env.args,
            kwargs=env.kwargs,
            headers=env.headers,
            enq_ms=env.enq_ms,
            ready_ms=_entry_ms(d.entry_id),
            started_monotonic=time.monotonic(),
        )
        ctx.state["task"] = task
        return task, ctx

    def max_deliveries(self, d: Delivery) -> Settlement:
        """The settlement of a job whose worker died each of the times it ran."""
        self._count(d.queue, 1)
        return self._reject(
            d,
            DeadReason.MAX_DELIVERIES,
            f"delivered {d.deliveries} times; its worker died each time",
        )

    def revoked(self, d: Delivery) -> Settlement:
        """The settlement of a job cancelled because an operator revoked it: its record
        says ``revoked`` already, so the broker only acks its entry."""
        log.info("job %s in %s was revoked while running: cancelled", d.job_id, d.queue)
        return Settlement(d, Verdict.REVOKED, "null")

    def _reject(self, d: Delivery, reason: DeadReason, message: str) -> Settlement:
        log.warning(
            "dead-lettering %s in %s: %s (%s)",
            d.job_id or d.entry_id,
            d.queue,
            message,
            reason.value,
        )
        error = json.dumps({"type": "PayloadError", "message": message})
        _call(self._hooked["on_dead_letter"], None, reason.value, error)
        outcome = Outcome(Verdict.FAILED)
        outcome.bury(reason, JobState.DEAD)
        return _settle(d, outcome, error)

    def _settlement(
        self,
        d: Delivery,
        ctx: JobContext,
        outcome: Outcome,
        hooked: dict[str, list[Callable[..., None]]],
    ) -> Settlement:
        if outcome.verdict is Verdict.COMPLETE:
            self._count(d.queue, 0)
            return _settle(d, outcome, str(outcome.result))
        error = _error_json(outcome.error)
        if outcome.verdict is Verdict.RETRY:
            self._count(d.queue, 2)
            _call(hooked["on_retry"], ctx, outcome)
            return _settle(d, outcome, error)
        # BURY, or FAILED that no hook decided: dead-letter it.
        outcome.bury(outcome.reason or DeadReason.NOT_RETRYABLE, outcome.state)
        self._count(d.queue, 1)
        _call(hooked["on_dead_letter"], ctx, outcome.reason, error)  # JobEvents logs it
        return _settle(d, outcome, error)

    def _count(self, queue: str, which: int) -> None:
        counts = self.by_queue.get(queue)
        if counts is None:
            counts = self.by_queue[queue] = [0, 0, 0]
        counts[which] += 1
        if which == 0:
            self.processed += 1
        elif which == 1:
            self.failed += 1
        else:
            self.retried += 1


#: How often the executor asks the middleware whether they are active.
HOOKS_RECHECK_S = 1.0


def _call(hooks: list[Callable[..., None]], *args: Any) -> None:
    """Call each hook; one that raises is logged, and the others still run (one loop, no
    call per hook: this runs several times a job)."""
    for hook in hooks:
        try:
            hook(*args)
        except Exception:
            log.exception(
                "middleware hook %s failed (ignored)", getattr(hook, "__qualname__", hook)
            )


def _asks_active(m: Middleware) -> bool:
    """``m.active()``; one that raises counts as active (its hooks run, as before)."""
    try:
        return bool(m.active())
    except Exception:
        log.exception("middleware %s: active() failed (its hooks run)", type(m).__name__)
        return True


def _settle(d: Delivery, outcome: Outcome, payload: str) -> Settlement:
    """The one place an ``Outcome`` becomes the broker's ``Settlement``."""
    return Settlement(
        d,
        outcome.verdict,
        payload,
        delay_ms=_delay_ms(outcome.delay_s) if outcome.verdict is Verdict.RETRY else 0,
        reason=outcome.reason if outcome.verdict is Verdict.BURY else "",
        state=outcome.state if outcome.verdict is Verdict.BURY else JobState.DEAD,
    )


def _delay_ms(delay_s: float) -> int:
    """A retry delay in ms, capped to ``[0, MAX_DELAY_S]``: a task may ask for any float
    (``Retry(delay_s=math.inf)``), and one job's odd value must cost only that job."""
    if math.isnan(delay_s):
        return 0
    return int(min(max(delay_s, 0.0), MAX_DELAY_S) * 1000)


def _error_json(error: BaseException | None) -> str:
    if isinstance(error, RemoteTaskError):
        return json.dumps(error.record)
    if error is None:
        return json.dumps({"type": "Error", "message": "failed"})
    return json.dumps(describe(error))


def _entry_ms(entry_id: str) -> int:
    """The time part of a stream entry id (``<ms>-<seq>``), 0 if it has none."""
    head = entry_id.partition("-")[0]
    return int(head) if head.isdigit() else 0


def _overrides(m: Middleware, name: str) -> bool:
    return getattr(type(m), name) is not getattr(Middleware, name)


__all__ = ["Executed", "Executor", "Runner", "SerializationError"]
