"""The worker actor: ``stem worker`` runs one ``Worker`` in one trio process.

(``stem.worker`` re-exports this module's names lazily, so that the process-pool child,
``stem.worker.child``, does not import trio, redis-py and the worker with its package.)

``run(...)`` is the blocking entry point the CLI calls: it installs SIGTERM/SIGINT
handling (first signal: graceful stop; second SIGINT: immediate), runs the worker and
returns the process exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from stem.config import parse_prefetch
from stem.observe.logs import configure_logging
from stem.runtime import run_actor, wait_for_redis
from stem.task import Pool
from stem.worker.core import Worker, WorkerOptions
from stem.worker.cpu import parse_cpu, pin_worker

if TYPE_CHECKING:
    from stem.app import Stem

__all__ = ["Worker", "WorkerOptions", "parse_queues", "run", "serve_worker"]


def parse_queues(spec: str) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
    """``"a,b"`` (strict order) or ``"a:3,b:1"`` (weighted) into names and weights."""
    from stem.broker.keys import check_name
    from stem.errors import ConfigError

    names: list[str] = []
    weights: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        names.append(check_name("queue name", name))
        if weight:
            if not weight.isdigit() or int(weight) < 1:
                raise ConfigError(f"queue weight {weight!r} in {part!r} must be a positive integer")
            weights.append(int(weight))
    if not names:
        raise ConfigError("--queues names no queue")
    if weights and len(weights) != len(names):
        raise ConfigError("give a weight to every queue or to none (e.g. 'high:3,low:1')")
    return tuple(names), (tuple(weights) if weights else None)


async def serve_worker(
    app: Stem,
    options: WorkerOptions,
    *,
    task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a worker until it stops (``worker.request_stop()``, burst, or cancellation)."""
    worker = Worker(app, options)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        task_status.started(worker)


def run(
    app: Stem,
    app_spec: str | None,
    *,
    queues: Sequence[str] = ("default",),
    weights: Sequence[int] | None = None,
    concurrency: int = 10,
    prefetch: str | int = "auto",
    pool: str | None = None,
    burst: bool = False,
    stop_timeout_s: float = 25.0,
    name: str | None = None,
    cpu: str = "auto",
) -> int:
    """Run a worker in this process until it stops; return the exit code (0).

    SIGTERM or SIGINT: graceful stop (running jobs get ``stop_timeout_s``); a second
    SIGINT: immediate stop (running jobs are handed back). ``cpu``: ``"auto"``, ``"off"``
    or a CPU number (``stem.worker.cpu``); applied here, before trio starts.
    """
    cpu_spec = parse_cpu(cpu)
    options = WorkerOptions(
        queues=tuple(queues),
        weights=tuple(weights) if weights else None,
        concurrency=concurrency,
        prefetch=parse_prefetch(prefetch),
        pool=Pool(pool) if pool else None,
        burst=burst,
        stop_timeout_s=stop_timeout_s,
        name=name,
        app_spec=app_spec,
    )
    # Building the worker opens the broker: on a cluster that reads the slot map and
    # needs every master it names, so a master failing over would fail it outside any
    # retry (exit 3). Wait for Redis first, as every actor does, and build it then.
    configure_logging("worker")
    placed = pin_worker(cpu_spec)
    if not wait_for_redis(app):
        return 0  # stopped before it started: nothing fetched, nothing to hand back
    worker = Worker(app, options)

    async def serve(nursery: trio.Nursery) -> None:
        await worker.serve()

    pools = "default" if pool is None else pool
    details = {
        "app": app_spec or "-",
        "name": worker.name,
        "queues": options.queues,
        "concurrency": concurrency,
        "prefetch": options.prefetch,
        "pool": pools,
        "burst": burst,
        "cpu": str(placed),
    }
    return run_actor(
        "worker",
        app,
        serve,
        stop=lambda immediate: worker.request_stop(immediate=immediate),
        details=details,
    )
