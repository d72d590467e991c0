"""The ``Supervisor``: start the children, restart them by strategy, stop them all.

Typical use (this is what ``stem supervise`` does)::

    specs = [ChildSpec("worker", [sys.executable, "-m", "stem", "worker"], replicas=4)]
    supervisor = Supervisor(
        specs,
        strategy=Strategy.ONE_FOR_ONE,
        intensity=RestartIntensity(max_restarts=5, within_s=60),
        status_path="/run/stem/status.json",
        handle_signals=True,
    )
    try:
        trio.run(supervisor.serve)
    except SupervisorGaveUp as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)

Lifecycle of ``serve()``: start every replica in spec order; then react to what happens:
a replica that ends is restarted (or not) according to its ``RestartType``, after its
``Backoff`` delay, together with its dependents under ``Strategy.REST_FOR_ONE``. Each
restart is counted against the ``RestartIntensity``; one too many and the supervisor
stops everything and raises ``SupervisorGaveUp``.

Stopping: ``request_stop()``, SIGTERM/SIGINT (with ``handle_signals=True``) or cancelling
``serve()`` all stop the children in reverse spec order (replicas of one spec together):
SIGTERM to each process group, SIGKILL after the spec's ``stop_timeout_s``. A second
SIGTERM/SIGINT during that SIGKILLs everything at once. The shutdown is shielded from
cancellation, so ``serve()`` never returns while a child it started is still running.
SIGHUP or ``request_rolling_restart()`` restarts the running replicas one at a time.

Requests and ``statistics()`` must be called from the thread running trio.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

import trio

from supervisor.backoff import DEFAULT_INTENSITY, IntensityWindow, RestartIntensity
from supervisor.errors import SupervisorConfigError, SupervisorGaveUp
from supervisor.health import FileHeartbeatProbe, HeartbeatProbe
from supervisor.output import OutputWriter
from supervisor.process import stop_group
from supervisor.replica import Replica, child_env
from supervisor.replica import describe_returncode as describe
from supervisor.spec import ChildSpec, RestartType, Strategy, validate_specs
from supervisor.status import (
    FINAL_STATES,
    ChildState,
    ChildStatistics,
    SupervisorState,
    SupervisorStatus,
    write_status,
)


@dataclasses.dataclass(frozen=True)
class _Ended:
    replica: Replica
    generation: int
    returncode: int | None  # None: it could not be started
    reason: str


@dataclasses.dataclass(frozen=True)
class _RestartDue:
    replica: Replica
    token: int


@dataclasses.dataclass(frozen=True)
class _RollingRestart:
    pass


_Event = _Ended | _RestartDue | _RollingRestart


class Supervisor:
    """Runs ``ChildSpec`` command lines as supervised process groups (see module doc).

    Args:
        specs: started in this order, stopped in reverse.
        strategy: what else restarts when a replica restarts.
        intensity: the restart budget of all children together.
        output_json: write children's lines as JSON objects instead of ``name.N | line``.
        output: where to write lines; ``sys.stdout`` when None.
        status_path: when set, a JSON status file kept up to date (see ``status``).
        status_interval_s: how often the status file is rewritten without a change.
        heartbeat_probe: how heartbeats are read; a ``FileHeartbeatProbe`` in a private
            temporary directory (removed at the end) when None.
        health_interval_s: how often heartbeat and memory checks run.
        handle_signals: act on SIGTERM/SIGINT (stop) and SIGHUP (rolling restart);
            needs ``serve()`` to run in the main thread.
        rng: source of backoff jitter (seed it for repeatable delays).

    Raises ``SupervisorConfigError`` for invalid arguments.
    """

    def __init__(
        self,
        specs: Iterable[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: RestartIntensity = DEFAULT_INTENSITY,
        output_json: bool = False,
        output: TextIO | None = None,
        status_path: str | os.PathLike[str] | None = None,
        status_interval_s: float = 2.0,
        heartbeat_probe: HeartbeatProbe | None = None,
        health_interval_s: float = 1.0,
        handle_signals: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._specs = validate_specs(specs)
        if not isinstance(strategy, Strategy):
            raise SupervisorConfigError(f"strategy must be a Strategy, got {strategy!r}")
        for name, value in (
            ("status_interval_s", status_interval_s),
            ("health_interval_s", health_interval_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise SupervisorConfigError(f"{name} must be > 0, got {value!r}")
        self._strategy = strategy
        self._intensity = intensity
        self._window = IntensityWindow(intensity)
        self._status_path = status_path
        self._status_interval_s = status_interval_s
        self._given_probe = heartbeat_probe
        self._health_interval_s = health_interval_s
        self._handle_signals = handle_signals
        rng = rng or random.Random()
        self._replicas = [
            Replica(spec, replica, index, rng)
            for index, spec in enumerate(self._specs)
            for replica in range(1, spec.replicas + 1)
        ]
        self._output = OutputWriter(
            [r.label for r in self._replicas], json_lines=output_json, stream=output
        )
        self._state = SupervisorState.RUNNING
        self._served = False
        self._stop_requested = False
        self._control_scope: trio.CancelScope | None = None
        self._run_scopes: set[trio.CancelScope] = set()
        self._send_channel: trio.MemorySendChannel[_Event] | None = None
        self._status_changed: trio.Event | None = None
        self._status_error_reported = False

    @property
    def specs(self) -> Sequence[ChildSpec]:
        """The specs, in start order."""
        return self._specs

    def statistics(self) -> tuple[ChildStatistics, ...]:
        """A frozen snapshot of every replica, in start order."""
        return tuple(replica.statistics() for replica in self._replicas)

    def request_stop(self) -> None:
        """Make ``serve()`` stop every child and return normally. Idempotent."""
        self._stop_requested = True
        if self._control_scope is not None:
            self._control_scope.cancel()

    def request_rolling_restart(self) -> None:
        """Restart the running replicas one at a time, in start order (ignored when idle).

        Each is stopped gracefully and started again at once; this is not counted against
        the restart intensity and does not grow its backoff.
        """
        self._send(_RollingRestart())

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Supervise until stopped; see the module docstring.

        ``task_status.started()`` is called once every replica was started. Returns after a
        requested stop, raises ``SupervisorGaveUp`` past the restart intensity, and
        re-raises cancellation; in every case all children are stopped first. A
        ``Supervisor`` serves once; a second call raises ``RuntimeError``.
        """
        if self._served:
            raise RuntimeError("a Supervisor can serve only once")
        self._served = True
        gave_up: SupervisorGaveUp | None = None
        try:
            with self._open_probe() as probe:
                async with trio.open_nursery() as nursery:
                    try:
                        gave_up = await self._supervise(nursery, probe, task_status)
                    finally:
                        with trio.CancelScope(shield=True):
                            await self._shutdown(gave_up)
                        for scope in self._run_scopes:
                            scope.cancel()
                        nursery.cancel_scope.cancel()
        finally:
            self._send_channel = None
            self._write_status()
        if gave_up is not None:
            raise gave_up

    @contextlib.contextmanager
    def _open_probe(self) -> Iterator[HeartbeatProbe]:
        if self._given_probe is not None:
            yield self._given_probe
            return
        with tempfile.TemporaryDirectory(prefix="supervisor-heartbeat-") as directory:
            yield FileHeartbeatProbe(directory)

    async def _supervise(
        self, nursery: trio.Nursery, probe: HeartbeatProbe, task_status: trio.TaskStatus[None]
    ) -> SupervisorGaveUp | None:
        self._nursery = nursery
        self._probe = probe
        send_channel, receive_channel = trio.open_memory_channel[_Event](math.inf)
        self._send_channel = send_channel
        self._status_changed = trio.Event()
        if self._handle_signals:
            await nursery.start(self._serve_signals)
        if self._status_path is not None:
            nursery.start_soon(self._serve_status_file)
        with trio.CancelScope() as self._control_scope:
            if self._stop_requested:
                self._control_scope.cancel()
            else:
                self._start_pending()
            self._write_status()  # readable as soon as serve() has started
            task_status.started()
            try:
                async for event in receive_channel:
                    await self._handle(event)
                    self._changed()
            except SupervisorGaveUp as exc:
                return exc
        return None

    async def _handle(self, event: _Event) -> None:
        if isinstance(event, _Ended):
            await self._on_ended(event)
        elif isinstance(event, _RestartDue):
            replica = event.replica
            if event.token == replica.restart_token and replica.state is ChildState.BACKOFF:
                replica.state = ChildState.PENDING
                self._start_pending()
        else:
            await self._rolling_restart()

    def _start_pending(self) -> None:
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

    def _start(self, replica: Replica) -> None:
        try:
            proc = replica.start(child_env(replica, self._probe))
        except OSError as exc:
            replica.state = ChildState.BACKOFF
            self._send(_Ended(replica, replica.generation, None, f"failed to start: {exc}"))
            return
        self._probe.child_started(replica.label)
        self._output.event(f"{replica.label} started (pid {proc.pid})")
        self._nursery.start_soon(self._run_replica, replica, replica.generation, replica.done)
        self._changed()

    async def _run_replica(self, replica: Replica, generation: int, done: trio.Event) -> None:
        # Shielded: the children's output and exits are still handled during a shutdown
        # caused by cancellation; serve() cancels this scope itself once all are stopped.
        assert replica.process is not None
        proc = replica.process
        with trio.CancelScope(shield=True) as scope:
            self._run_scopes.add(scope)
            try:
                returncode, reason = await replica.run(
                    proc, self._output, self._probe, self._health_interval_s
                )
                self._send(_Ended(replica, generation, returncode, reason))
            finally:
                self._run_scopes.discard(scope)
                done.set()

    async def _on_ended(self, event: _Ended) -> None:
        replica = event.replica
        if event.generation != replica.generation or replica.expect_exit:
            return  # a stale event, or an exit the supervisor asked for
        replica.last_exit = event.returncode
        replica.last_reason = event.reason
        if not self._wants_restart(replica, event.returncode):
            replica.state = ChildState.EXITED
            self._output.event(f"{replica.label} {event.reason}; not restarted")
            return
        if self._window.record(trio.current_time()):
            self._output.event(f"{replica.label} {event.reason}; restart intensity exceeded")
            raise SupervisorGaveUp(
                replica.label,
                self._intensity.max_restarts,
                self._intensity.within_s,
                event.reason,
            )
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
        self._send(_RestartDue(replica, token))

    async def _stop_dependents(self, replica: Replica) -> None:
        later = [
            r
            for r in self._replicas
            if r.spec_index > replica.spec_index and r.state not in FINAL_STATES
        ]
        await self._stop_in_reverse(later)
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

    async def _shutdown(self, gave_up: SupervisorGaveUp | None) -> None:
        self._state = SupervisorState.STOPPING
        self._changed()
        await self._stop_in_reverse(self._replicas)
        for replica in self._replicas:
            if replica.state is not ChildState.EXITED:
                replica.state = ChildState.STOPPED
        self._state = SupervisorState.GAVE_UP if gave_up else SupervisorState.STOPPED
        self._output.event(str(gave_up) if gave_up else "all children stopped")

    async def _stop_in_reverse(self, replicas: Sequence[Replica]) -> None:
        """Stop replicas spec by spec, last spec first; replicas of one spec together."""
        for index in sorted({r.spec_index for r in replicas}, reverse=True):
            async with trio.open_nursery() as nursery:
                for replica in replicas:
                    if replica.spec_index == index:
                        nursery.start_soon(self._stop_replica, replica)

    async def _stop_replica(self, replica: Replica) -> None:
        """Stop the replica's process, if any, and wait until its run() is over."""
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
            replica.last_reason = f"stopped by the supervisor ({describe(returncode)})"
        else:
            replica.last_reason = replica.health_reason or describe(returncode)

    def _kill_all(self) -> None:
        for replica in self._replicas:
            if replica.process is not None and replica.process.returncode is None:
                replica.process.signal_group(signal.SIGKILL)

    async def _serve_signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    self._output.event(f"received {name}")
                    self.request_rolling_restart()
                elif self._state is SupervisorState.STOPPING:
                    self._output.event(f"received {name} again; killing every child")
                    self._kill_all()
                else:
                    self._output.event(f"received {name}; stopping")
                    self.request_stop()

    async def _serve_status_file(self) -> None:
        while True:
            self._write_status()
            with trio.move_on_after(self._status_interval_s):
                assert self._status_changed is not None
                await self._status_changed.wait()
            self._status_changed = trio.Event()

    def _changed(self) -> None:
        if self._status_changed is not None:
            self._status_changed.set()

    def _write_status(self) -> None:
        if self._status_path is None:
            return
        status = SupervisorStatus(os.getpid(), self._state, time.time(), self.statistics())
        try:
            write_status(self._status_path, status)
        except OSError as exc:
            if not self._status_error_reported:
                self._status_error_reported = True
                self._output.event(f"cannot write status file: {exc}")

    def _send(self, event: _Event) -> None:
        if self._send_channel is not None:
            self._send_channel.send_nowait(event)
