"""A worker's consumer name: the default one, and the check that no live process uses it.

The name is the worker's identity in Redis (its consumer in every group, its heartbeat).
Under ``stem supervise`` it is stable across restarts of the same replica, so a restarted
worker finds and finishes what it held (``Worker._recover_own``) instead of waiting for
the reclaimer.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import psutil

from supervisor import CHILD_NAME_ENV, REPLICA_ENV


def default_name() -> str:
    """A consumer name that is stable across restarts of the same supervised replica."""
    host = os.environ.get("DYNO") or socket.gethostname()
    child = os.environ.get(CHILD_NAME_ENV)
    if child:
        return f"{host}/{child}.{os.environ.get(REPLICA_ENV, '1')}"
    return f"{host}/{os.getpid()}"


def live_holder(workers: Iterable[Mapping[str, Any]], name: str) -> int | None:
    """The pid of another live process on this host whose heartbeat claims ``name``."""
    for w in workers:
        if (
            w.get("id") == name
            and w.get("pid") != os.getpid()
            and w.get("host") == socket.gethostname()
        ) and _pid_alive(w.get("pid")):
            return int(w["pid"])
    return None


def _pid_alive(pid: object) -> bool:
    """Whether ``pid`` (from a heartbeat record: may be anything) is a live process.

    A zombie is not: a worker killed with its supervisor stays one until something reaps
    it, and its successor must be able to take its name meanwhile.
    """
    if not (isinstance(pid, int) and 0 < pid < 2**31):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone (NoSuchProcess), or not ours to look at: as before
        return psutil.pid_exists(pid)
