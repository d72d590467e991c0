"""A supervisor in its own process, for the tests that signal or SIGKILL the supervisor.

``run_supervisor.py STATUS_PATH CHILD_MODE...``: one spec per mode (named ``c0``, ``c1``,
...), each running ``child.py MODE``; exits 0 after a stop, 3 if it gave up. The stop
timeout is ``$STOP_TIMEOUT_S`` (default 5 s).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio

from supervisor import ChildSpec, Supervisor, SupervisorGaveUp

CHILD = str(Path(__file__).with_name("child.py"))


def main(status_path: str, modes: list[str]) -> int:
    stop_timeout_s = float(os.environ.get("STOP_TIMEOUT_S", "5"))
    specs = [
        ChildSpec(f"c{i}", [sys.executable, CHILD, *mode.split()], stop_timeout_s=stop_timeout_s)
        for i, mode in enumerate(modes)
    ]
    supervisor = Supervisor(
        specs, status_path=status_path, status_interval_s=0.2, handle_signals=True
    )
    try:
        trio.run(supervisor.serve)
    except SupervisorGaveUp as exc:
        print(exc, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
