"""Every error the supervisor raises on purpose, in one small tree.

::

    SupervisorError                 base of everything below
    ├── SupervisorConfigError       the caller's mistake: a ChildSpec or setting is invalid
    └── SupervisorGaveUp            a child restarted more often than the restart intensity
                                    allows; every child was stopped before this was raised

``SupervisorConfigError`` is also a ``ValueError`` so generic argument checking catches it.
A caller such as ``stem supervise`` catches ``SupervisorGaveUp`` and exits non-zero.
"""

from __future__ import annotations


class SupervisorError(Exception):
    """Base of every error the supervisor raises on purpose."""


class SupervisorConfigError(SupervisorError, ValueError):
    """A ``ChildSpec``, backoff, intensity or supervisor argument is invalid.

    Raised when the object is built, before any process is started.
    """


class SupervisorGaveUp(SupervisorError):
    """A child restarted more than ``max_restarts`` times within ``within_s`` seconds.

    By the time this is raised from ``Supervisor.serve()`` every child has been stopped
    (SIGTERM to each process group, SIGKILL after its stop timeout).

    Attributes:
        child: the label of the child whose restart crossed the limit, e.g. ``"worker.2"``.
        max_restarts: the intensity's restart budget.
        within_s: the intensity's window in seconds.
        reason: why that child's last run ended, e.g. ``"exited with code 1"``.
    """

    def __init__(self, child: str, max_restarts: int, within_s: float, reason: str) -> None:
        self.child = child
        self.max_restarts = max_restarts
        self.within_s = within_s
        self.reason = reason
        super().__init__(
            f"gave up: child {child} needed more than {max_restarts} restarts "
            f"within {within_s:g} s (last run: {reason})"
        )

    def __reduce__(self) -> tuple[type[SupervisorGaveUp], tuple[str, int, float, str]]:
        return (type(self), (self.child, self.max_restarts, self.within_s, self.reason))
