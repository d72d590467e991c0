"""What to run: ``ChildSpec``, ``RestartType`` and ``Strategy``.

A ``ChildSpec`` describes one command line and how many replicas of it to run. Specs are
started in the order given and stopped in the reverse order; that order is also what
``Strategy.REST_FOR_ONE`` means by "started after"::

    ChildSpec("redis", ["redis-server", "--port", "6390"], stop_timeout_s=5)
    ChildSpec("worker", [sys.executable, "-m", "stem", "worker"], replicas=4,
              heartbeat_timeout_s=30, max_rss_mb=512)

Each replica is labelled ``<name>.<replica>`` (1-based), e.g. ``worker.3``: output lines,
statistics and errors use that label. Every field is checked when the spec is built;
a bad value raises ``SupervisorConfigError``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
from collections.abc import Iterable, Mapping, Sequence

from supervisor.backoff import Backoff
from supervisor.errors import SupervisorConfigError

#: Set in every child's environment: its spec's ``name``.
CHILD_NAME_ENV = "SUPERVISOR_CHILD_NAME"
#: Set in every child's environment: its replica number, 1-based, as text.
REPLICA_ENV = "SUPERVISOR_REPLICA"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class RestartType(enum.Enum):
    """When a replica that ended on its own is started again (OTP's restart types)."""

    PERMANENT = "permanent"
    """Always restarted, whatever the exit code."""
    TRANSIENT = "transient"
    """Restarted only after an abnormal end: non-zero exit, a signal, or a failed health check."""
    TEMPORARY = "temporary"
    """Never restarted; its end does not affect any other child."""


class Strategy(enum.Enum):
    """What else is restarted when one replica is restarted."""

    ONE_FOR_ONE = "one_for_one"
    """Only that replica."""
    REST_FOR_ONE = "rest_for_one"
    """That replica and every replica of the specs listed after its spec: the later ones
    are stopped (in reverse order) and started again once it is back. Replicas of one spec
    are peers: a failing ``worker.2`` does not restart ``worker.3``."""


@dataclasses.dataclass(frozen=True)
class ChildSpec:
    """One command line to run as ``replicas`` supervised processes.

    Attributes:
        name: letters, digits, ``_`` and ``-``; unique within a supervisor.
        argv: the command line; ``argv[0]`` is looked up on ``PATH``.
        env: variables added to (or overriding) the supervisor's own environment. The
            supervisor also sets ``SUPERVISOR_CHILD_NAME``, ``SUPERVISOR_REPLICA`` (1-based),
            ``SUPERVISOR_HEARTBEAT_FILE`` and, unless set already, ``PYTHONUNBUFFERED=1``.
        replicas: how many copies to run (>= 1).
        restart: see ``RestartType``.
        stop_timeout_s: grace between SIGTERM to the process group and SIGKILL.
        heartbeat_timeout_s: when set, a replica whose heartbeat is older than this (after a
            start-up grace of the same length) is hung: its group is SIGKILLed and it is
            restarted. The child calls ``supervisor.touch_heartbeat()`` more often than that.
        max_rss_mb: when set, a replica whose process tree (the child plus descendants)
            uses more resident memory than this is stopped gracefully and restarted.
        backoff: the delays between restarts of one replica.
        cwd: working directory of the child; the supervisor's own when None.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)
    replicas: int = 1
    restart: RestartType = RestartType.PERMANENT
    stop_timeout_s: float = 10.0
    heartbeat_timeout_s: float | None = None
    max_rss_mb: float | None = None
    backoff: Backoff = dataclasses.field(default_factory=Backoff)
    cwd: str | None = None

    def __post_init__(self) -> None:
        # Freeze the containers so a spec cannot change under a running supervisor.
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", types.MappingProxyType(dict(self.env)))
        self._validate()

    def _validate(self) -> None:
        if not _NAME.fullmatch(self.name):
            _fail(
                self.name,
                "name must be letters, digits, '_' or '-', starting with a letter or digit",
            )
        if not self.argv or not all(isinstance(a, str) and a for a in self.argv):
            _fail(self.name, "argv must be a non-empty sequence of non-empty strings")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()):
            _fail(self.name, "env keys and values must be strings")
        if not isinstance(self.replicas, int) or self.replicas < 1:
            _fail(self.name, f"replicas must be an int >= 1, got {self.replicas!r}")
        if not isinstance(self.restart, RestartType):
            _fail(self.name, f"restart must be a RestartType, got {self.restart!r}")
        _positive(self.name, "stop_timeout_s", self.stop_timeout_s)
        if self.heartbeat_timeout_s is not None:
            _positive(self.name, "heartbeat_timeout_s", self.heartbeat_timeout_s)
        if self.max_rss_mb is not None:
            _positive(self.name, "max_rss_mb", self.max_rss_mb)

    def labels(self) -> list[str]:
        """The replica labels, ``["worker.1", "worker.2", ...]``."""
        return [f"{self.name}.{replica}" for replica in range(1, self.replicas + 1)]


def _fail(name: str, message: str) -> None:
    raise SupervisorConfigError(f"child {name!r}: {message}")


def _positive(name: str, field: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        _fail(name, f"{field} must be a finite number > 0, got {value!r}")


def validate_specs(specs: Iterable[ChildSpec]) -> tuple[ChildSpec, ...]:
    """Check a list of specs as a whole (non-empty, unique names); return it as a tuple."""
    result = tuple(specs)
    if not result:
        raise SupervisorConfigError("a supervisor needs at least one ChildSpec")
    for spec in result:
        if not isinstance(spec, ChildSpec):
            raise SupervisorConfigError(f"expected a ChildSpec, got {spec!r}")
    names = [spec.name for spec in result]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SupervisorConfigError(f"child names must be unique, repeated: {duplicates}")
    return result
