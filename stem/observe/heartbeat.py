"""The liveness signal an actor gives its supervisor.

``stem supervise`` (through the generic ``supervisor`` package) hands each child a file
named by ``supervisor.HEARTBEAT_FILE_ENV``; touching it from the actor's event loop says
"my loop is turning". A frozen or wedged actor stops touching it and is replaced. The
supervisor owns that protocol (variable name, how the file is touched, errors ignored
once the supervisor is gone), so this module only names it for stem's actors.
"""

from __future__ import annotations

from supervisor import touch_heartbeat


def touch_supervisor_heartbeat() -> None:
    """Touch the supervisor's heartbeat file, if this process has one (else do nothing).

    Delegates to :func:`supervisor.touch_heartbeat`, which also ignores a heartbeat
    directory that went away with its supervisor instead of failing the actor's loop.
    """
    touch_heartbeat()
