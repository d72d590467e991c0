"""Health checks: heartbeats (is the child hung?) and memory (is its tree too big?).

Heartbeat: the supervisor gives every replica ``SUPERVISOR_HEARTBEAT_FILE``, a path in a
private directory. A child calls ``touch_heartbeat()`` (or simply updates the file's
mtime) more often than its spec's ``heartbeat_timeout_s``. The file probe compares the
mtime with the wall clock, so a wall-clock jump forward larger than the timeout can make a
healthy child look hung once.

Another transport (a socket, a Redis key, ...) plugs in as a ``HeartbeatProbe``.

Memory: ``tree_rss_bytes()`` sums the resident set of a process and all its descendants.
Pages shared between processes (after ``fork``) are counted once per process, which
overstates the total: the cautious side for a cap.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from typing import Protocol

import psutil

HEARTBEAT_FILE_ENV = "SUPERVISOR_HEARTBEAT_FILE"


def touch_heartbeat() -> None:
    """Tell the supervisor this process is alive; a no-op when not run by a supervisor.

    Cheap enough to call every second: one ``utime`` system call. Errors (the directory
    was removed because the supervisor is gone) are ignored.
    """
    path = os.environ.get(HEARTBEAT_FILE_ENV)
    if not path:
        return
    try:
        os.utime(path)
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            open(path, "ab").close()
    except OSError:
        pass


class HeartbeatProbe(Protocol):
    """How the supervisor learns when a replica last showed a sign of life.

    Methods are called from the trio thread and must not block for long.
    """

    def child_env(self, label: str) -> Mapping[str, str]:
        """Environment variables that tell replica ``label`` how to send heartbeats."""
        ...

    def child_started(self, label: str) -> None:
        """A new process for ``label`` was started; earlier heartbeats no longer count."""
        ...

    def seconds_since_heartbeat(self, label: str) -> float:
        """Seconds since the last heartbeat of ``label``, or since it started if none."""
        ...


class FileHeartbeatProbe:
    """The default ``HeartbeatProbe``: one file per replica, its mtime is the heartbeat.

    ``directory`` must exist and is not removed by the probe; the supervisor creates a
    private temporary one and removes it when ``serve()`` returns.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._started: dict[str, float] = {}

    def path(self, label: str) -> str:
        """The heartbeat file of replica ``label``."""
        return os.path.join(self.directory, f"{label}.heartbeat")

    def child_env(self, label: str) -> Mapping[str, str]:
        """``SUPERVISOR_HEARTBEAT_FILE`` pointing at the replica's file."""
        return {HEARTBEAT_FILE_ENV: self.path(label)}

    def child_started(self, label: str) -> None:
        """Create the file (so plain ``utime`` works) and restart the grace period."""
        self._started[label] = time.time()
        with open(self.path(label), "ab"):
            pass

    def seconds_since_heartbeat(self, label: str) -> float:
        """Age of the newer of the file's mtime and the replica's start."""
        latest = self._started.get(label, 0.0)
        with contextlib.suppress(OSError):
            latest = max(latest, os.stat(self.path(label)).st_mtime)
        return max(0.0, time.time() - latest)


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` plus all its descendants, in bytes; 0 if it is gone.

    Processes that exit while being measured are skipped. Blocking (reads /proc): run it
    in a thread from async code.
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total
