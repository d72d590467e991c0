"""A generic trio process supervisor: command lines in, supervised process groups out.

It imports nothing from ``stem``; ``stem supervise`` builds ``ChildSpec`` objects and runs
a ``Supervisor``. See ``supervisor.core`` for the lifecycle and a usage example, and
``docs/guides/supervision-internals.md``.

For child programs: ``touch_heartbeat()`` reports liveness to a spec with
``heartbeat_timeout_s``; ``set_parent_death_signal()`` makes the child's own children die
with it on Linux; ``CHILD_NAME_ENV``, ``REPLICA_ENV`` and ``HEARTBEAT_FILE_ENV`` name the
environment variables the supervisor sets in each child (use them, not the literals).

supervisord's distribution also installs a top-level ``supervisor`` package: do not install
both in one virtualenv.
"""

from supervisor.backoff import Backoff, RestartIntensity
from supervisor.core import Supervisor
from supervisor.errors import SupervisorConfigError, SupervisorError, SupervisorGaveUp
from supervisor.health import (
    HEARTBEAT_FILE_ENV,
    FileHeartbeatProbe,
    HeartbeatProbe,
    touch_heartbeat,
    tree_rss_bytes,
)
from supervisor.process import set_parent_death_signal
from supervisor.spec import CHILD_NAME_ENV, REPLICA_ENV, ChildSpec, RestartType, Strategy
from supervisor.status import (
    ALIVE_STATES,
    FINAL_STATES,
    ChildState,
    ChildStatistics,
    SupervisorState,
    SupervisorStatus,
    read_status,
)

__all__ = [
    "ALIVE_STATES",
    "CHILD_NAME_ENV",
    "FINAL_STATES",
    "HEARTBEAT_FILE_ENV",
    "REPLICA_ENV",
    "Backoff",
    "ChildSpec",
    "ChildState",
    "ChildStatistics",
    "FileHeartbeatProbe",
    "HeartbeatProbe",
    "RestartIntensity",
    "RestartType",
    "Strategy",
    "Supervisor",
    "SupervisorConfigError",
    "SupervisorError",
    "SupervisorGaveUp",
    "SupervisorState",
    "SupervisorStatus",
    "read_status",
    "set_parent_death_signal",
    "touch_heartbeat",
    "tree_rss_bytes",
]
