"""How a runner takes its next job from the runners' channel (``core._next_job``): at once
after a run that waited for a thread, after a schedule point otherwise, never once
cancelled. Pure trio: no Redis."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from stem.broker import Delivery
from stem.worker.core import _next_job


class Resumed(trio.abc.Instrument):
    """Counts how often the scheduler resumes one task: each time, it had yielded."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task, self.times = task, 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.times += 1


def job(n: int) -> Delivery:
    return Delivery("default", 0, f"{n}-0", f"J{n}", b"{}", 0, 1)


async def resumes_while_taking(
    recv: trio.MemoryReceiveChannel[Delivery], waited: bool
) -> tuple[Delivery | None, int]:
    resumed = Resumed(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(resumed)
    try:
        got = await _next_job(recv, waited)
    finally:
        trio.lowlevel.remove_instrument(resumed)
    return got, resumed.times


@pytest.mark.parametrize(("waited", "yields"), [(True, False), (False, True)])
async def test_a_waiting_job_is_taken_at_once_only_after_a_run_that_waited(
    waited: bool, yields: bool
) -> None:
    send, recv = trio.open_memory_channel[Delivery](10)
    send.send_nowait(job(1))
    got, resumed = await resumes_while_taking(recv, waited)
    assert got == job(1)
    assert (resumed > 0) is yields


async def test_a_cancelled_runner_takes_no_job() -> None:
    send, recv = trio.open_memory_channel[Delivery](10)
    send.send_nowait(job(1))
    with trio.CancelScope() as scope:
        scope.cancel()
        await _next_job(recv, waited=True)
    assert scope.cancelled_caught
    assert recv.statistics().current_buffer_used == 1  # still there for another runner


class CancelOnResume(trio.abc.Instrument):
    """Cancels ``scope`` just as the scheduler resumes ``task`` (after it yielded)."""

    def __init__(self, task: trio.lowlevel.Task, scope: trio.CancelScope) -> None:
        self.task, self.scope = task, scope

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.scope.cancel()


async def test_a_runner_cancelled_while_it_yields_takes_no_job() -> None:
    send, recv = trio.open_memory_channel[Delivery](10)
    send.send_nowait(job(1))
    with trio.CancelScope() as scope:
        instrument = CancelOnResume(trio.lowlevel.current_task(), scope)
        trio.lowlevel.add_instrument(instrument)
        try:
            await _next_job(recv, waited=False)  # yields first: the cancel comes meanwhile
        finally:
            trio.lowlevel.remove_instrument(instrument)
    assert scope.cancelled_caught
    assert recv.statistics().current_buffer_used == 1


async def test_a_closed_and_empty_channel_ends_the_runner() -> None:
    send, recv = trio.open_memory_channel[Delivery](10)
    send.send_nowait(job(1))
    await send.aclose()
    assert await _next_job(recv, waited=True) == job(1)
    assert await _next_job(recv, waited=True) is None
    assert await _next_job(recv, waited=False) is None


async def test_an_empty_channel_waits_for_the_next_job() -> None:
    send, recv = trio.open_memory_channel[Delivery](10)
    got: list[Delivery | None] = []

    async def take() -> None:
        got.append(await _next_job(recv, waited=True))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        send.send_nowait(job(2))
    assert got == [job(2)]
