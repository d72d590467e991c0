"""One replica of a child spec: its bookkeeping and the life of each of its processes.

Internal to the supervisor. A ``Replica`` owns at most one ``ChildProcess`` at a time
(an *incarnation*). ``Replica.run()`` spends an incarnation's life: it copies the output,
runs the health checks, waits for the process to end, cleans up the rest of its process
group, and returns why it ended. ``core.Supervisor`` decides what happens next.
"""

from __future__ import annotations

import functools
import math
import os
import random
import signal
import time
from collections.abc import Mapping

import trio

from supervisor.backoff import BackoffTracker
from supervisor.health import HeartbeatProbe, tree_rss_bytes
from supervisor.output import OutputWriter, pump_lines
from supervisor.process import ChildProcess, spawn, stop_group
from supervisor.spec import CHILD_NAME_ENV, REPLICA_ENV, ChildSpec
from supervisor.status import ALIVE_STATES, ChildState, ChildStatistics

# How long to keep reading output after the group is gone: a descendant that escaped the
# group may hold the pipe open forever.
_OUTPUT_DRAIN_S = 1.0
_MB = 1024 * 1024


def describe_returncode(returncode: int) -> str:
    """``"exited with code 1"`` or ``"killed by SIGKILL"``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


class Replica:
    """Mutable state of one replica; only the supervisor's tasks touch it."""

    def __init__(self, spec: ChildSpec, replica: int, spec_index: int, rng: random.Random) -> None:
        self.spec = spec
        self.replica = replica
        self.spec_index = spec_index
        self.label = f"{spec.name}.{replica}"
        self.tracker = BackoffTracker(spec.backoff, rng)
        self.state = ChildState.PENDING
        self.process: ChildProcess | None = None
        self.generation = 0  # incarnation number; 0 = never started
        self.restart_token = 0  # bumped to invalidate a scheduled restart
        self.expect_exit = False  # the supervisor ended this incarnation on purpose
        self.health_reason: str | None = None  # set when a health check ended it
        self.done = trio.Event()  # set when the current incarnation's run() is over
        self.restarts = 0
        self.started_at: float | None = None
        self.started_mono = 0.0
        self.last_exit: int | None = None
        self.last_reason: str | None = None

    def start(self, env: Mapping[str, str]) -> ChildProcess:
        """Begin a new incarnation. Raises ``OSError`` if the command cannot be started."""
        if self.generation > 0:
            self.restarts += 1
        self.generation += 1
        self.expect_exit = False
        self.health_reason = None
        self.process = None
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        self.process = spawn(self.spec.argv, env, self.spec.cwd)
        self.done = trio.Event()
        self.state = ChildState.RUNNING
        return self.process

    def uptime_s(self) -> float:
        """Seconds since the current (or latest) incarnation started."""
        return time.monotonic() - self.started_mono

    def statistics(self) -> ChildStatistics:
        """A frozen snapshot (see ``ChildStatistics``)."""
        alive = self.state in ALIVE_STATES and self.process is not None
        return ChildStatistics(
            name=self.spec.name,
            replica=self.replica,
            pid=self.process.pid if alive and self.process else None,
            state=self.state,
            restarts=self.restarts,
            started_at=self.started_at,
            uptime_s=round(self.uptime_s(), 3) if alive else None,
            last_exit=self.last_exit,
            last_reason=self.last_reason,
        )

    async def run(
        self,
        proc: ChildProcess,
        output: OutputWriter,
        probe: HeartbeatProbe,
        health_interval_s: float,
    ) -> tuple[int, str]:
        """Live one incarnation to its end; return its return code and why it ended.

        Never raises for the child's sake; closes the pipes before returning. If cancelled
        the process is not stopped: the caller's shutdown does that.
        """
        pumps_done = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump_output, proc, output, pumps_done)
                nursery.start_soon(self._watch_health, proc, probe, health_interval_s)
                returncode = await proc.wait()
                await stop_group(proc, self.spec.stop_timeout_s)  # what the child left behind
                with trio.move_on_after(_OUTPUT_DRAIN_S):
                    await pumps_done.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await proc.aclose()
        return returncode, self.health_reason or describe_returncode(returncode)

    async def _pump_output(
        self, proc: ChildProcess, output: OutputWriter, done: trio.Event
    ) -> None:
        async with trio.open_nursery() as nursery:
            for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                emit = functools.partial(output.line, self.label, name)
                nursery.start_soon(pump_lines, stream, emit)
        done.set()

    async def _watch_health(
        self, proc: ChildProcess, probe: HeartbeatProbe, interval_s: float
    ) -> None:
        """Every ``interval_s``: a hung child is SIGKILLed, a bloated one stopped gracefully."""
        timeout_s = self.spec.heartbeat_timeout_s
        if timeout_s is None and self.spec.max_rss_mb is None:
            return
        interval_s = min(interval_s, timeout_s / 4 if timeout_s else math.inf)
        while True:
            await trio.sleep(interval_s)
            if self.state is not ChildState.RUNNING:
                continue  # being stopped already; a child shutting down may stop beating
            if reason := self._heartbeat_problem(probe):
                self.health_reason, self.state = reason, ChildState.STOPPING
                proc.signal_group(signal.SIGKILL)  # a hung or stopped process ignores SIGTERM
                return
            if reason := await self._memory_problem(proc):
                self.health_reason, self.state = reason, ChildState.STOPPING
                await stop_group(proc, self.spec.stop_timeout_s)
                return

    def _heartbeat_problem(self, probe: HeartbeatProbe) -> str | None:
        timeout_s = self.spec.heartbeat_timeout_s
        if timeout_s is None:
            return None
        age_s = probe.seconds_since_heartbeat(self.label)
        if age_s <= timeout_s:
            return None
        return f"hung: no heartbeat for {age_s:.1f} s (> {timeout_s:g} s)"

    async def _memory_problem(self, proc: ChildProcess) -> str | None:
        cap_mb = self.spec.max_rss_mb
        if cap_mb is None or proc.returncode is not None:
            return None
        rss_mb = await trio.to_thread.run_sync(tree_rss_bytes, proc.pid) / _MB
        if rss_mb <= cap_mb:
            return None
        return f"memory: {rss_mb:.0f} MB > max_rss_mb {cap_mb:g}"


def child_env(replica: Replica, probe: HeartbeatProbe) -> dict[str, str]:
    """The environment of a replica's process: ours, the spec's, then the supervisor's."""
    env = {"PYTHONUNBUFFERED": "1", **os.environ, **replica.spec.env}
    env.update(probe.child_env(replica.label))
    env[CHILD_NAME_ENV] = replica.spec.name
    env[REPLICA_ENV] = str(replica.replica)
    return env
