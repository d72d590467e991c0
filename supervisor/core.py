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

Run ``serve()`` in the main thread: each child is told to die when the thread that
started it exits (``PR_SET_PDEATHSIG``), which is what makes a SIGKILLed supervisor take
its children with it. ``request_stop()`` and ``request_rolling_restart()`` must be called
from the thread running trio. Output is written synchronously, so a supervisor whose
stdout is a pipe nobody reads will stall; send it to a file or a log collector.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

import trio

from supervisor.backoff import DEFAULT_INTENSITY, RestartIntensity
from supervisor.control import Controller, RollingRestart
from supervisor.errors import SupervisorConfigError, SupervisorGaveUp
from supervisor.health import FileHeartbeatProbe, HeartbeatProbe
from supervisor.output import OutputWriter
from supervisor.replica import Replica
from supervisor.spec import ChildSpec, Strategy, validate_specs
from supervisor.status import (
    ChildState,
    ChildStatistics,
    SupervisorState,
    SupervisorStatus,
    write_status,
)


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
        self._status_path = status_path
        self._status_interval_s = status_interval_s
        self._given_probe = heartbeat_probe
        self._health_interval_s = health_interval_s
        self._handle_signals = handle_signals
        rng = rng or random.Random()  # noqa: S311  (backoff jitter, not secrecy)
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
        self._controller: Controller | None = None
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
        if self._controller is not None and self._state is SupervisorState.RUNNING:
            self._controller.send(RollingRestart())

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
                    controller = self._controller = Controller(
                        self._replicas,
                        strategy=self._strategy,
                        intensity=self._intensity,
                        output=self._output,
                        probe=probe,
                        nursery=nursery,
                        health_interval_s=self._health_interval_s,
                        on_change=self._changed,
                    )
                    try:
                        gave_up = await self._supervise(nursery, controller, task_status)
                    finally:
                        with trio.CancelScope(shield=True):
                            await self._shutdown(controller, gave_up)
                        controller.cancel_runs()
                        nursery.cancel_scope.cancel()
        finally:
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
        self,
        nursery: trio.Nursery,
        controller: Controller,
        task_status: trio.TaskStatus[None],
    ) -> SupervisorGaveUp | None:
        self._status_changed = trio.Event()
        if self._handle_signals:
            await nursery.start(self._serve_signals)
        if self._status_path is not None:
            nursery.start_soon(self._serve_status_file)
        with trio.CancelScope() as self._control_scope:
            if self._stop_requested:
                self._control_scope.cancel()
            else:
                controller.start_pending()
            self._write_status()  # readable as soon as serve() has started
            task_status.started()
            try:
                await controller.serve_events()
            except SupervisorGaveUp as exc:
                return exc
        return None

    async def _shutdown(self, controller: Controller, gave_up: SupervisorGaveUp | None) -> None:
        self._state = SupervisorState.STOPPING
        self._changed()
        await controller.stop_in_reverse(self._replicas)
        for replica in self._replicas:
            if replica.state is not ChildState.EXITED:
                replica.state = ChildState.STOPPED
        self._state = SupervisorState.GAVE_UP if gave_up else SupervisorState.STOPPED
        self._output.event(str(gave_up) if gave_up else "all children stopped")

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
                    if self._controller is not None:
                        self._controller.kill_all()
                else:
                    self._output.event(f"received {name}; stopping")
                    self.request_stop()

    async def _serve_status_file(self) -> None:
        while True:
            self._write_status()
            with trio.move_on_after(self._status_interval_s):
                assert self._status_changed is not None  # noqa: S101  (narrows a type)
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
