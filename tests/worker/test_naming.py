"""Claiming a consumer name: only a live process on this host holds one."""

from __future__ import annotations

import os
import socket

from stem.worker.naming import live_holder

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
