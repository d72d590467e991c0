"""The ``Executor`` alone: from a delivery to a settlement, with a fake runner.

No Redis and no pools: the runner below records what it was asked to run and returns or
raises what the test says, so each test pins one decision of the executor.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stem import RetryPolicy, Stem
from stem.broker import Delivery
from stem.context import JobContext
from stem.envelope import Envelope
from stem.middleware.base import Middleware
from stem.middleware.retries import Retries
from stem.observe.tracing import Tracing
from stem.outcome import Outcome, Verdict
from stem.states import DeadReason, JobState
from stem.task import Pool, Task
from stem.worker.execute import Executor

app = Stem("redis://unused:1/0", retry=RetryPolicy(max_retries=2, backoff_base_s=0.0))


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(time_limit_s=7.0, soft_time_limit_s=3.0)
def limited() -> None: ...


class FakeRunner:
    """Returns ``result`` or raises ``error``; remembers every call."""

    hands_over = False

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.calls: list[tuple[str, list[Any], float | None, float | None]] = []

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any:
        self.calls.append((task.name, ctx.args, soft_s, hard_s))
        if self.error is not None:
            raise self.error
        return self.result


def executor(runner: FakeRunner, *middleware: Middleware) -> Executor:
    runners = {pool: runner for pool in Pool}
    return Executor(app, runners, [Retries(), *middleware])


def delivery(task: str, args: list[Any], attempt: int = 0) -> Delivery:
    envelope = Envelope("J1", task, args, {}, "default", 0).encode()
    return Delivery("default", 0, "1-0", "J1", envelope.encode(), attempt, 1)


async def test_a_result_becomes_a_complete_settlement_with_its_json() -> None:
    runner = FakeRunner(result={"sum": 3})
    settlement = await executor(runner).execute(delivery(add.name, [1, 2]))
    assert (settlement.verdict, json.loads(settlement.payload)) == (Verdict.COMPLETE, {"sum": 3})
    assert runner.calls == [(add.name, [1, 2], None, None)]


async def test_time_limits_are_read_from_the_task() -> None:
    runner = FakeRunner()
    await executor(runner).execute(delivery(limited.name, []))
    assert runner.calls == [(limited.name, [], 3.0, 7.0)]


async def test_an_error_with_retries_left_becomes_a_retry() -> None:
    settlement = await executor(FakeRunner(error=ValueError("x"))).execute(
        delivery(add.name, [1, 2], attempt=0)
    )
    assert settlement.verdict is Verdict.RETRY
    assert json.loads(settlement.payload)["type"] == "ValueError"


async def test_an_error_with_no_retry_left_is_buried_as_failed_with_max_retries() -> None:
    settlement = await executor(FakeRunner(error=ValueError("x"))).execute(
        delivery(add.name, [1, 2], attempt=2)
    )
    assert (settlement.verdict, settlement.state, settlement.reason) == (
        Verdict.BURY,
        JobState.FAILED,
        DeadReason.MAX_RETRIES.value,
    )


async def test_a_result_that_is_not_json_fails_without_a_retry() -> None:
    settlement = await executor(FakeRunner(result={1, 2})).execute(delivery(add.name, [1, 2]))
    assert (settlement.verdict, settlement.reason) == (
        Verdict.BURY,
        DeadReason.NOT_RETRYABLE.value,
    )


async def test_an_unknown_task_is_buried_without_running_anything() -> None:
    runner = FakeRunner()
    settlement = await executor(runner).execute(delivery("no.such.task", []))
    assert (settlement.verdict, settlement.reason, runner.calls) == (
        Verdict.BURY,
        DeadReason.UNKNOWN_TASK.value,
        [],
    )


async def test_arguments_that_do_not_fit_are_buried_without_running_anything() -> None:
    runner = FakeRunner()
    settlement = await executor(runner).execute(delivery(add.name, [1, 2, 3]))
    assert (settlement.reason, runner.calls) == (DeadReason.BAD_ARGUMENTS.value, [])


async def test_a_delivery_without_a_record_is_buried_as_missing_record() -> None:
    d = Delivery("default", 0, "1-0", "J1", None, 0, 1, {"id": "J1"})
    settlement = await executor(FakeRunner()).execute(d)
    assert settlement.reason == DeadReason.MISSING_RECORD.value


async def test_a_middleware_may_turn_a_failure_into_a_retry_and_a_failing_hook_is_ignored() -> None:
    class Forgiving(Middleware):
        def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
            outcome.retry(5.0)

    class Broken(Middleware):
        def before_process(self, ctx: JobContext) -> None:
            raise RuntimeError("a bug in a hook")

    ex = executor(FakeRunner(error=ValueError("x")), Forgiving(), Broken())
    settlement = await ex.execute(delivery(add.name, [1, 2], attempt=2))
    assert (settlement.verdict, settlement.delay_ms) == (Verdict.RETRY, 5000)


class HandsOver(FakeRunner):
    """A runner that, like the thread and process pools, waits for another thread."""

    hands_over = True


@pytest.mark.parametrize(
    ("runner", "task", "waited"),
    [
        (FakeRunner(result=3), add.name, False),  # an async task: it may never have awaited
        (HandsOver(result=3), add.name, True),
        (HandsOver(error=ValueError("x")), add.name, False),  # a raise claims nothing
        (HandsOver(result=3), "no.such.task", False),  # refused before it ran
    ],
    ids=["async", "handed-over", "handed-over-raised", "refused"],
)
async def test_a_run_says_whether_it_surely_waited_for_another_thread(
    runner: FakeRunner, task: str, waited: bool
) -> None:
    executed = await executor(runner).execute_job(delivery(task, [1, 2]))
    assert executed.waited is waited


class Named(Middleware):
    """Writes ``<hook> <name>`` into ``seen`` from each hook; with ``fails``, then raises."""

    def __init__(self, seen: list[str], name: str, fails: bool = False) -> None:
        self.seen, self.name, self.fails = seen, name, fails

    def _saw(self, hook: str) -> None:
        self.seen.append(f"{hook} {self.name}")
        if self.fails:
            raise RuntimeError("a bug in a hook")

    def before_process(self, ctx: JobContext) -> None:
        self._saw("before")

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        self._saw("after")

    def on_cancelled(self, ctx: JobContext) -> None:
        self._saw("cancelled")


def named(seen: list[str]) -> list[Middleware]:
    """a (fails), b, c (fails), registered in that order."""
    return [Named(seen, "a", fails=True), Named(seen, "b"), Named(seen, "c", fails=True)]


async def test_job_end_hooks_run_last_registered_first_and_one_failing_stops_none() -> None:
    seen: list[str] = []
    ex = executor(FakeRunner(result=3), *named(seen))
    settlement = await ex.execute(delivery(add.name, [1, 2]))
    assert settlement.verdict is Verdict.COMPLETE
    assert seen == ["before a", "before b", "before c", "after c", "after b", "after a"]


async def test_a_retry_delay_beyond_ten_years_is_capped() -> None:
    class Forever(Middleware):
        def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
            outcome.retry(float("inf"))

    settlement = await executor(FakeRunner(error=ValueError("x")), Forever()).execute(
        delivery(add.name, [1, 2])
    )
    assert settlement.delay_ms == 10 * 365 * 86_400 * 1000


class Blocks(FakeRunner):
    """A run that never returns on its own (until it is cancelled)."""

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any:
        await trio.sleep_forever()


class Records(Middleware):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        self.seen.append(("after_process", ctx.job_id))

    def on_cancelled(self, ctx: JobContext) -> None:
        self.seen.append(("on_cancelled", ctx.job_id))


async def test_a_run_cancelled_before_it_returns_tells_the_middleware_and_stays_cancelled() -> None:
    records = Records()
    runs = executor(Blocks(), records)
    with trio.move_on_after(0) as scope:  # a revoke, or a hard stop
        await runs.execute(delivery(add.name, [1, 2]))
    assert scope.cancelled_caught
    assert records.seen == [("on_cancelled", "J1")]


async def test_cancelled_hooks_run_last_registered_first_and_one_failing_stops_none() -> None:
    seen: list[str] = []
    runs = executor(Blocks(), *named(seen))
    with trio.move_on_after(0) as scope:
        await runs.execute(delivery(add.name, [1, 2]))
    assert scope.cancelled_caught
    assert seen == [
        "before a", "before b", "before c", "cancelled c", "cancelled b", "cancelled a"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "traceparent", [12345, None, {"a": 1}, "x" * 100_000], ids=["int", "null", "object", "huge"]
)
async def test_a_trace_header_stem_did_not_write_costs_the_job_its_span_only(
    traceparent: object,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    doc = json.loads(Envelope("J1", add.name, [1, 2], {}, "default", 0).encode())
    doc["headers"] = {"traceparent": traceparent}
    d = Delivery("default", 0, "1-0", "J1", json.dumps(doc).encode(), 0, 1)
    settlement = await executor(FakeRunner(result=3), Tracing(provider)).execute(d)
    assert (settlement.verdict, settlement.payload) == (Verdict.COMPLETE, "3")
    provider.shutdown()


class Switched(Middleware):
    """Records its hooks; ``on`` is what ``active()`` answers (``broken``: it raises)."""

    def __init__(self, on: bool) -> None:
        self.on, self.broken = on, False
        self.seen: list[tuple[str, Any]] = []

    def active(self) -> bool:
        if self.broken:
            raise RuntimeError("active() broke")
        return self.on

    def before_process(self, ctx: JobContext) -> None:
        self.seen.append(("before", ctx.args))

    def after_process(self, ctx: JobContext, outcome: Outcome) -> None:
        self.seen.append(("after", ctx.args))

    def on_retry(self, ctx: JobContext, outcome: Outcome) -> None:
        self.seen.append(("retry", ctx.args))


class Gated(FakeRunner):
    """Each run waits for its own event (by the job's first argument)."""

    def __init__(self) -> None:
        super().__init__(result=None)
        self.started: dict[int, trio.Event] = {}
        self.release: dict[int, trio.Event] = {}

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any:
        self.started.setdefault(ctx.args[0], trio.Event()).set()
        await self.release.setdefault(ctx.args[0], trio.Event()).wait()
        if ctx.args[0] == 1:
            raise ValueError("job 1 fails: a retry")
        return None


async def test_an_inactive_middleware_is_skipped_until_it_says_it_is_active(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stem.worker.execute.HOOKS_RECHECK_S", 3600.0)
    switched = Switched(on=False)
    runs = executor(FakeRunner(result=3), switched)
    await runs.execute(delivery(add.name, [1, 2]))
    switched.on = True
    await runs.execute(delivery(add.name, [3, 4]))  # not asked again yet
    assert switched.seen == []

    monkeypatch.setattr("stem.worker.execute.HOOKS_RECHECK_S", 0.0)
    runs._recheck_at = 0.0  # as if the hour had passed
    await runs.execute(delivery(add.name, [5, 6]))
    switched.broken = True  # an answer that raises counts as active: its hooks run
    await runs.execute(delivery(add.name, [7, 8]))
    assert switched.seen == [
        ("before", [5, 6]), ("after", [5, 6]), ("before", [7, 8]), ("after", [7, 8])
    ]  # fmt: skip


async def test_all_of_a_jobs_hooks_come_from_one_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stem.worker.execute.HOOKS_RECHECK_S", 0.0)  # asked at every job
    switched, gated = Switched(on=False), Gated()
    runs = executor(gated, switched)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runs.execute, delivery(add.name, [1, 0]))
        await gated.started.setdefault(1, trio.Event()).wait()  # admitted while off
        switched.on = True
        nursery.start_soon(runs.execute, delivery(add.name, [2, 0]))
        await gated.started.setdefault(2, trio.Event()).wait()  # admitted while on
        gated.release.setdefault(1, trio.Event()).set()
        gated.release.setdefault(2, trio.Event()).set()
    # Job 1 ran while the middleware switched on: none of its hooks was called.
    assert sorted(switched.seen) == [("after", [2, 0]), ("before", [2, 0])]


async def test_a_middleware_switched_on_before_the_first_job_sees_that_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stem.worker.execute.HOOKS_RECHECK_S", 3600.0)
    switched = Switched(on=False)
    runs = executor(FakeRunner(result=3), switched)  # built while off
    switched.on = True  # e.g. an app setting its tracer provider after making the worker
    await runs.execute(delivery(add.name, [1, 2]))
    assert switched.seen == [("before", [1, 2]), ("after", [1, 2])]


def test_tracing_and_meters_are_active_only_with_a_provider() -> None:
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    from stem.observe.metrics import Meters

    assert Tracing(TracerProvider()).active() and Meters(MeterProvider()).active()
    assert not Tracing(NoOpTracerProvider()).active()
    assert not Meters(NoOpMeterProvider()).active()
