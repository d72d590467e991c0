"""The control loop: decide and carry out starts, restarts and stops (internal).

One task runs ``Controller.serve_events()`` and handles one event at a time, so the
decisions (restart or not, the intensity, who depends on whom) never race each other:

- ``Ended``: a replica's process ended (or could not be started). Unless the controller
  ended it on purpose, its ``RestartType`` decides whether it restarts; a restart is
  counted against the intensity (one too many raises ``SupervisorGaveUp``), scheduled
  after the backoff delay, and under ``REST_FOR_ONE`` the replicas of later specs are
  stopped (in reverse order) and wait as PENDING until it is back.
- ``RestartDue``: a backoff delay is over; start what is PENDING and may start.
- ``RollingRestart``: stop and start each running replica in turn.

The processes themselves are watched by one task per incarnation (``Replica.run``); those
tasks are shielded from cancellation, so output and exits are still handled while the
supervisor shuts down, and ``cancel_runs()`` ends them once every child is stopped.
"""

from __future__ import annotations

import dataclasses
import math
import signal
from collections.abc import Callable, Sequence

import trio

from supervisor.backoff import IntensityWindow, RestartIntensity
from supervisor.errors import SupervisorGaveUp
from supervisor.health import HeartbeatProbe
from supervisor.output import OutputWriter
from supervisor.process import ChildProcess, stop_group
from supervisor.replica import Replica, child_env, describe_returncode
from supervisor.spec import RestartType, Strategy
from supervisor.status import ALIVE_STATES, FINAL_STATES, ChildState


@dataclasses.dataclass(frozen=True)
class Ended:
    """An incarnation of ``replica`` ended, or could not be started."""

    replica: Replica
    generation: int
    returncode: int | None  # None: it could not be started
    reason: str


@dataclasses.dataclass(frozen=True)
class RestartDue:
    """The backoff delay of ``replica`` is over (stale unless ``token`` is current)."""

    replica: Replica
    token: int


@dataclasses.dataclass(frozen=True)
class RollingRestart:
    """Stop and start every running replica, one at a time."""


Event = Ended | RestartDue | RollingRestart


class Controller:
    """Owns the replicas' lifecycle inside one ``Supervisor.serve()`` call."""

    def __init__(
        self,
        replicas: Sequence[Replica],
        *,
        strategy: Strategy,
        intensity: RestartIntensity,
        output: OutputWriter,
        probe: HeartbeatProbe,
        nursery: trio.Nursery,
        health_interval_s: float,
        on_change: Callable[[], None],
    ) -> None:
        self._replicas = replicas
        self._strategy = strategy
        self._intensity = intensity
        self._window = IntensityWindow(intensity)
        self._output = output
        self._probe = probe
        self._nursery = nursery
        self._health_interval_s = health_interval_s
        self._changed = on_change
        self._run_scopes: set[trio.CancelScope] = set()
        self._send_channel, self._receive_channel = trio.open_memory_channel[Event](math.inf)

    def send(self, event: Event) -> None:
        """Queue an event; never blocks."""
        self._send_channel.send_nowait(event)

    async def serve_events(self) -> None:
        """Handle events until cancelled. Raises ``SupervisorGaveUp`` past the intensity."""
        async for event in self._receive_channel:
            if isinstance(event, Ended):
                await self._on_ended(event)
            elif isinstance(event, RestartDue):
                self._on_restart_due(event)
            else:
                await self._rolling_restart()
            self._changed()

    def start_pending(self) -> None:
        """Start every PENDING replica whose dependencies (REST_FOR_ONE) are up."""
        waiting_spec: int | None = None
        for replica in self._replicas:
            if waiting_spec is not None and replica.spec_index > waiting_spec:
                break
            if replica.state is ChildState.PENDING:
                self._start(replica)
            if self._strategy is Strategy.REST_FOR_ONE and replica.state in (
                ChildState.PENDING,
                ChildState.BACKOFF,
            ):
                waiting_spec = replica.spec_index

    async def stop_in_reverse(self, replicas: Sequence[Replica]) -> None:
        """Stop replicas spec by spec, last spec first; replicas of one spec together."""
        for index in sorted({r.spec_index for r in replicas}, reverse=True):
            async with trio.open_nursery() as nursery:
                for replica in replicas:
                    if replica.spec_index == index:
                        nursery.start_soon(self._stop_replica, replica)

    def kill_all(self) -> None:
        """SIGKILL the process group of every replica that is alive."""
        for replica in self._replicas:
            if replica.process is not None and replica.state in ALIVE_STATES:
                replica.process.signal_group(signal.SIGKILL)

    def cancel_runs(self) -> None:
        """End the shielded watcher tasks (after every child was stopped)."""
        for scope in self._run_scopes:
            scope.cancel()

    def _start(self, replica: Replica) -> None:
        try:
            proc = replica.start(child_env(replica, self._probe))
        except OSError as exc:
            replica.state = ChildState.BACKOFF
            self.send(Ended(replica, replica.generation, None, f"failed to start: {exc}"))
            return
        self._probe.child_started(replica.label)
        self._output.event(f"{replica.label} started (pid {proc.pid})")
        self._nursery.start_soon(self._run, replica, proc, replica.generation, replica.done)
        self._changed()

    async def _run(
        self, replica: Replica, proc: ChildProcess, generation: int, done: trio.Event
    ) -> None:
        with trio.CancelScope(shield=True) as scope:
            self._run_scopes.add(scope)
            try:
                returncode, reason = await replica.run(
                    proc, self._output, self._probe, self._health_interval_s
                )
                self.send(Ended(replica, generation, returncode, reason))
            finally:
                self._run_scopes.discard(scope)
                done.set()

    async def _on_ended(self, event: Ended) -> None:
        replica = event.replica
        if event.generation != replica.generation or replica.expect_exit:
            return  # a stale event, or an exit the controller asked for
        replica.last_exit = event.returncode
        replica.last_reason = event.reason
        if not self._wants_restart(replica, event.returncode):
            replica.state = ChildState.EXITED
            self._output.event(f"{replica.label} {event.reason}; not restarted")
            return
        if self._window.record(trio.current_time()):
            self._output.event(f"{replica.label} {event.reason}; restart intensity exceeded")
            limit = self._intensity
            raise SupervisorGaveUp(replica.label, limit.max_restarts, limit.within_s, event.reason)
        delay_s = replica.tracker.next_delay_s(replica.uptime_s())
        self._output.event(f"{replica.label} {event.reason}; restarting in {delay_s:.2f} s")
        replica.state = ChildState.BACKOFF
        replica.restart_token += 1
        self._nursery.start_soon(self._restart_later, replica, replica.restart_token, delay_s)
        if self._strategy is Strategy.REST_FOR_ONE:
            await self._stop_dependents(replica)

    def _wants_restart(self, replica: Replica, returncode: int | None) -> bool:
        restart = replica.spec.restart
        if restart is RestartType.TRANSIENT:
            return returncode != 0 or replica.health_reason is not None
        return restart is RestartType.PERMANENT

    async def _restart_later(self, replica: Replica, token: int, delay_s: float) -> None:
        await trio.sleep(delay_s)
        self.send(RestartDue(replica, token))

    def _on_restart_due(self, event: RestartDue) -> None:
        replica = event.replica
        if event.token == replica.restart_token and replica.state is ChildState.BACKOFF:
            replica.state = ChildState.PENDING
            self.start_pending()

    async def _stop_dependents(self, replica: Replica) -> None:
        later = [
            r
            for r in self._replicas
            if r.spec_index > replica.spec_index and r.state not in FINAL_STATES
        ]
        await self.stop_in_reverse(later)
        for dependent in later:
            dependent.restart_token += 1  # forget its own scheduled restart, if any
            dependent.last_reason = f"stopped to restart after {replica.label}"
            temporary = dependent.spec.restart is RestartType.TEMPORARY
            dependent.state = ChildState.EXITED if temporary else ChildState.PENDING

    async def _rolling_restart(self) -> None:
        self._output.event("rolling restart")
        for replica in self._replicas:
            if replica.state is not ChildState.RUNNING:
                continue
            await self._stop_replica(replica)
            replica.last_reason = "rolling restart"
            self._start(replica)
            self._changed()

    async def _stop_replica(self, replica: Replica) -> None:
        """Stop the replica's process, if any, and wait until its watcher is done."""
        replica.expect_exit = True
        proc = replica.process
        if proc is None:
            return
        was_alive = proc.returncode is None
        if was_alive:
            self._output.event(f"stopping {replica.label} (pid {proc.pid})")
            replica.state = ChildState.STOPPING
            self._changed()
        await stop_group(proc, replica.spec.stop_timeout_s)
        await replica.done.wait()
        returncode = await proc.wait()
        replica.last_exit = returncode
        if was_alive:
            replica.last_reason = f"stopped by the supervisor ({describe_returncode(returncode)})"
        else:
            replica.last_reason = replica.health_reason or describe_returncode(returncode)
