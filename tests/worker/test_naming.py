"""Claiming a consumer name: only a live process on this host holds one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import psutil

from stem.worker.naming import live_holder
from tests.worker.conftest import wait_until

HOST = socket.gethostname()


def test_a_live_process_on_this_host_holds_its_name() -> None:
    parent = os.getppid()
    assert live_holder([{"id": "w", "host": HOST, "pid": parent}], "w") == parent


def test_heartbeat_records_with_foreign_pids_hold_nothing() -> None:
    records: list[dict[str, object]] = [
        {"id": "w", "host": HOST, "pid": "not a number"},
        {"id": "w", "host": HOST, "pid": None},
        {"id": "w", "host": HOST, "pid": -5},
        {"id": "w", "host": HOST, "pid": 2**40},
        {"id": "w", "host": HOST, "pid": os.getpid()},  # ourselves
        {"id": "w", "host": "another-host", "pid": os.getppid()},
    ]
    assert live_holder(records, "w") is None


def test_a_killed_worker_left_a_zombie_holds_its_name_no_longer() -> None:
    # Killed with its supervisor, a worker stays a zombie until something reaps it; the
    # supervisor's successor must be able to start a worker under the same name.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"id": "vm/worker.2", "pid": child.pid, "host": socket.gethostname()}
        assert live_holder([record], "vm/worker.2") == child.pid
        os.kill(child.pid, signal.SIGKILL)
        wait_until(
            lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE,
            what="the child to become a zombie (not reaped yet)",
        )
        assert live_holder([record], "vm/worker.2") is None
    finally:
        child.kill()
        child.wait()
