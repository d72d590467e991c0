"""A pool of child processes for sync tasks, each running one job at a time.

Children are started on demand (up to ``size``) with ``python -m stem.worker.child``
and reused. A child is replaced after ``max_tasks_per_child`` jobs, when its peak RSS
passes ``max_memory_mb``, when it is killed at a task's hard time limit, and when it dies;
one still starting when its job is cancelled (revoked) is killed at once. Children start
with SIGTERM/SIGINT blocked and then ignore them, so a stop signal to the worker's whole
process group never kills one, not even one still importing the app.
``aclose()`` closes every child's stdin (they exit), then kills what is left after 5 s.
Children die with the worker (``PR_SET_PDEATHSIG``, armed before the child's program
starts), so a SIGKILLed worker leaves none, not even children that are still starting.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from stem.errors import HardTimeLimitExceeded, JobError, RemoteTaskError
from supervisor import set_parent_death_signal

if TYPE_CHECKING:
    from stem.context import JobContext
    from stem.task import Task

log = logging.getLogger("stem.worker.pool")


__all__ = ["ChildDied", "ProcessPool", "RemoteTaskError"]


#: The signals a pool child ignores (the worker decides when it stops); it is started with
#: them blocked, so that one sent before it could ignore them waits for that.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class ChildDied(JobError):
    """A pool child exited while running a job (the task crashed the interpreter)."""


class _LineReader:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def readline(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.buffer += data
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line


class _Proc:
    """A pool child with trio streams on its pipes, started from the calling thread.

    Not ``trio.lowlevel.open_process``: it forks from a worker thread, and the child's
    parent-death signal fires when *that thread* exits (trio retires idle threads), which
    would kill healthy pool children at random.

    The parent-death signal is armed between fork and exec, with this process's pid: a
    child that set it itself would do so only after its imports (seconds on a busy host),
    and a worker SIGKILLed meanwhile left it orphaned, its parent already pid 1.
    """

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        # If the worker died between fork and prctl, the child sees another parent and
        # kills itself at once.
        die_with_us = functools.partial(
            set_parent_death_signal, signal.SIGKILL, parent_pid=os.getpid()
        )
        # Born with SIGTERM/SIGINT blocked (a signal mask survives fork and exec): a stop
        # signal sent to the whole group while the child still imports stays pending, and
        # is dropped once the child ignores it (stem.worker.child), instead of killing it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self.popen = subprocess.Popen(  # noqa: S603  (argv of our own child, no shell)
                argv,
                stdin=in_r,
                stdout=out_w,
                env=env,
                # Only a pre-resolved prctl call runs between fork and exec (as in
                # supervisor.process.spawn), so the worker's other threads do not matter.
                preexec_fn=die_with_us,  # noqa: PLW1509
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.close(in_r)
            os.close(out_w)
        self.pid = self.popen.pid
        self.stdin: trio.lowlevel.FdStream | None = trio.lowlevel.FdStream(in_w)
        self.stdout = trio.lowlevel.FdStream(out_r)

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()

    async def wait(self) -> int:
        while (code := self.popen.poll()) is None:
            await trio.sleep(0.01)
        return code

    async def aclose(self) -> None:
        if self.stdin is not None:
            await self.stdin.aclose()
            self.stdin = None

    async def close_streams(self) -> None:
        await self.aclose()
        await self.stdout.aclose()


@dataclass(eq=False)
class _Child:
    proc: _Proc
    reader: _LineReader
    jobs: int = 0
    rss_kb: int = 0
    broken: bool = field(default=False)

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None  # noqa: S101  (narrows a type)
        await self.proc.stdin.send_all(json.dumps(request).encode() + b"\n")
        reply: dict[str, Any] = json.loads(await self.reader.readline())
        self.jobs += 1
        self.rss_kb = int(reply.get("rss_kb", 0))
        return reply

    def kill(self) -> None:
        self.broken = True
        if self.proc.returncode is None:
            self.proc.kill()


class ProcessPool:
    """Runs sync tasks in up to ``size`` reusable child processes."""

    hands_over = True  # a run that returns has waited for a child's reply

    def __init__(
        self,
        app_spec: str,
        size: int,
        *,
        max_tasks_per_child: int = 10_000,
        max_memory_mb: float = 512.0,
    ) -> None:
        self.app_spec = app_spec
        self.limiter = trio.CapacityLimiter(size)
        self.max_tasks_per_child = max_tasks_per_child
        self.max_memory_kb = int(max_memory_mb * 1024)
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self.replaced = 0

    @property
    def children(self) -> int:
        """Child processes alive now (busy or idle)."""
        return len(self._all)

    async def run(
        self, task: Task[Any, Any], ctx: JobContext, soft_s: float | None, hard_s: float | None
    ) -> Any:
        """Run ``task`` for ``ctx`` in a child; raise what it raised (as RemoteTaskError)."""
        request = {
            "task": task.name,
            "args": ctx.args,
            "kwargs": ctx.kwargs,
            "soft_s": soft_s if soft_s and (not hard_s or soft_s < hard_s) else None,
            "ctx": _ctx_fields(ctx),
        }
        async with self.limiter:
            child = self._idle.pop() if self._idle else await self._spawn()
            try:
                with trio.move_on_after(hard_s or float("inf")) as scope:
                    reply = await child.call(request)
                if scope.cancelled_caught:
                    child.kill()  # still running the task: only killing stops it
            except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
                child.kill()
                code = await child.proc.wait()
                raise ChildDied(f"pool child {child.proc.pid} died (exit code {code})") from None
            except BaseException:
                child.kill()  # cancelled mid-job: the child's state is unknown
                raise
            finally:
                await self._recycle(child)
        if scope.cancelled_caught:
            raise HardTimeLimitExceeded(
                f"hard time limit of {hard_s}s exceeded: pool child killed", job_id=ctx.job_id
            )
        if reply["ok"]:
            return reply["result"]
        raise RemoteTaskError(
            reply["error"],
            mro=reply.get("mro", ()),
            retry_delay_s=reply.get("retry_delay_s"),
        )

    async def _recycle(self, child: _Child) -> None:
        worn = child.jobs >= self.max_tasks_per_child or child.rss_kb > self.max_memory_kb
        if child.broken or worn or child.proc.returncode is not None:
            if not child.broken:
                log.info("replacing pool child %s after %s jobs", child.proc.pid, child.jobs)
            await self._retire(child)
            self.replaced += 1
        else:
            self._idle.append(child)

    async def _spawn(self) -> _Child:
        argv = [sys.executable, "-m", "stem.worker.child", self.app_spec]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = _Proc(argv, env)
        child = _Child(proc, _LineReader(proc.stdout))
        self._all.add(child)
        try:
            with trio.fail_after(60):
                hello = json.loads(await child.reader.readline())
        except BaseException as exc:
            # Failed, or cancelled while it started (its job revoked, the worker stopping
            # at once): a child left here would idle until the worker exits.
            child.kill()
            await self._retire(child)
            if isinstance(exc, EOFError | trio.TooSlowError | ValueError):
                raise ChildDied(f"pool child for {self.app_spec!r} failed to start") from None
            raise
        log.debug("pool child %s ready", hello.get("pid"))
        return child

    async def _retire(self, child: _Child) -> None:
        self._all.discard(child)
        with trio.CancelScope(shield=True):
            await child.proc.aclose()  # stdin closed: the child's request loop ends
            with trio.move_on_after(5):
                await child.proc.wait()
            if child.proc.returncode is None:
                child.proc.kill()
                await child.proc.wait()
            await child.proc.close_streams()

    async def aclose(self) -> None:
        """Stop every child: close stdin, wait up to 5 s, then kill."""
        children, self._idle = list(self._all), []
        async with trio.open_nursery() as nursery:
            for child in children:
                nursery.start_soon(self._retire, child)


def _ctx_fields(ctx: JobContext) -> dict[str, Any]:
    return {
        "job_id": ctx.job_id,
        "task": ctx.task,
        "queue": ctx.queue,
        "attempt": ctx.attempt,
        "deliveries": ctx.deliveries,
        "args": ctx.args,
        "kwargs": ctx.kwargs,
        "headers": ctx.headers,
        "enq_ms": ctx.enq_ms,
    }
