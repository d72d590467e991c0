"""The liveness signal an actor gives its supervisor.

``stem supervise`` (through the generic ``supervisor`` package) hands each child a file
in ``$SUPERVISOR_HEARTBEAT_FILE``; touching it from the actor's event loop says "my loop
is turning". A frozen or wedged actor stops touching it and is replaced.
"""

from __future__ import annotations

import os
from pathlib import Path


def touch_supervisor_heartbeat() -> None:
    """Touch the supervisor's heartbeat file, if this process has one (else do nothing)."""
    path = os.environ.get("SUPERVISOR_HEARTBEAT_FILE")
    if path:
        Path(path).touch()
