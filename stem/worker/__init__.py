"""The worker: ``Worker``, its options, and the actor ``stem worker`` runs (``run``).

The names are imported on first use from ``stem.worker.actor`` (``__getattr__``): this
package also holds the process-pool child (``python -m stem.worker.child``), which runs
sync tasks and must not import what the worker needs (trio, redis-py, the OpenTelemetry
SDK: about 30 MiB of RSS per child; docs/performance.md) unless its tasks do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stem.worker.actor import Worker, WorkerOptions, parse_queues, run, serve_worker

__all__ = ["Worker", "WorkerOptions", "parse_queues", "run", "serve_worker"]


def __getattr__(name: str) -> Any:
    """The names of ``__all__``, from ``stem.worker.actor`` on first use."""
    if name in __all__:
        from stem.worker import actor

        return getattr(actor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
