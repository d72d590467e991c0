"""What the supervisor reports: child states, statistics records and the status file.

``Supervisor.statistics()`` returns one frozen ``ChildStatistics`` per replica. With
``status_path`` set, the supervisor also writes them as JSON on every change and every
``status_interval_s``; ``read_status()`` reads that file from another process::

    {"version": 1, "supervisor_pid": 4242, "state": "running", "updated_at": 1735732800.5,
     "children": [{"name": "worker", "replica": 1, "pid": 4243, "state": "running",
                   "restarts": 2, "started_at": 1735732790.1, "uptime_s": 10.4,
                   "last_exit": 1, "last_reason": "exited with code 1"}]}

The file is replaced atomically (written beside it, then renamed), so a reader never sees
half a file. It is left in place when the supervisor ends, holding its final state.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import tempfile
from typing import Any

STATUS_VERSION = 1


class ChildState(enum.Enum):
    """Where one replica is in its life."""

    PENDING = "pending"
    """Not started yet, or waiting for a child it depends on (``REST_FOR_ONE``)."""
    RUNNING = "running"
    """Its process is alive."""
    STOPPING = "stopping"
    """Asked to stop (SIGTERM, or SIGKILL when hung); not reaped yet."""
    BACKOFF = "backoff"
    """Ended; will be started again when its backoff delay is over."""
    EXITED = "exited"
    """Ended and will not be started again (its restart type says so)."""
    STOPPED = "stopped"
    """Stopped because the supervisor stopped."""


ALIVE_STATES = frozenset({ChildState.RUNNING, ChildState.STOPPING})
"""States in which the replica has a live process (``pid`` is set)."""
FINAL_STATES = frozenset({ChildState.EXITED, ChildState.STOPPED})
"""States the replica will not leave while the supervisor runs."""


class SupervisorState(enum.Enum):
    """Where the supervisor as a whole is."""

    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    GAVE_UP = "gave_up"


@dataclasses.dataclass(frozen=True)
class ChildStatistics:
    """A snapshot of one replica.

    Attributes:
        name: the spec's name; ``label`` adds the replica, e.g. ``worker.2``.
        replica: 1-based replica number.
        pid: the live process id, None unless ``state in ALIVE_STATES``.
        state: see ``ChildState``.
        restarts: how many times this replica was started after its first start.
        started_at: wall-clock time (``time.time()``) of its latest start, None before it.
        uptime_s: seconds its current process has run, None when not alive.
        last_exit: return code of its latest process (``-N`` = killed by signal N).
        last_reason: why its latest process ended or was restarted, in words.
    """

    name: str
    replica: int
    pid: int | None
    state: ChildState
    restarts: int
    started_at: float | None
    uptime_s: float | None
    last_exit: int | None
    last_reason: str | None

    @property
    def label(self) -> str:
        """``<name>.<replica>``, as used in output lines."""
        return f"{self.name}.{self.replica}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the state as its value)."""
        return {**dataclasses.asdict(self), "state": self.state.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChildStatistics:
        """The inverse of ``to_json``."""
        return cls(**{**data, "state": ChildState(data["state"])})


@dataclasses.dataclass(frozen=True)
class SupervisorStatus:
    """The content of a status file: the supervisor's pid and state and every replica."""

    supervisor_pid: int
    state: SupervisorState
    updated_at: float
    children: tuple[ChildStatistics, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with a format ``version``."""
        return {
            "version": STATUS_VERSION,
            "supervisor_pid": self.supervisor_pid,
            "state": self.state.value,
            "updated_at": self.updated_at,
            "children": [child.to_json() for child in self.children],
        }


def write_status(path: str | os.PathLike[str], status: SupervisorStatus) -> None:
    """Replace ``path`` atomically with ``status`` as JSON. Raises ``OSError`` on failure."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".status-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(status.to_json(), file, indent=1)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_status(path: str | os.PathLike[str]) -> SupervisorStatus:
    """Read a status file written by a supervisor.

    Raises ``OSError`` if it cannot be read and ``ValueError`` if it is not a status file
    of a known version.
    """
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    if not isinstance(data, dict) or data.get("version") != STATUS_VERSION:
        raise ValueError(f"{os.fspath(path)!r} is not a version {STATUS_VERSION} status file")
    try:
        return SupervisorStatus(
            supervisor_pid=int(data["supervisor_pid"]),
            state=SupervisorState(data["state"]),
            updated_at=float(data["updated_at"]),
            children=tuple(ChildStatistics.from_json(c) for c in data["children"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a valid status file: {exc}") from exc
