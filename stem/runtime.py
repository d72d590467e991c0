"""What every actor process does around its main loop, written once.

``run_actor(name, app, serve)`` configures logging, waits for Redis (an actor started by
``stem supervise`` may come up before the embedded Redis answers), runs ``serve`` under
trio, and turns SIGTERM/SIGINT into a graceful stop: the first signal calls the actor's
``stop`` callback (or cancels it), a second SIGINT cancels at once. Returns the exit code.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from stem.errors import BrokerUnavailable
from stem.observe.logs import configure_logging

if TYPE_CHECKING:
    from stem.app import Stem

log = logging.getLogger("stem.runtime")

#: How long an actor waits for Redis at start before giving up (exit code 3).
REDIS_WAIT_S = 30.0


def wait_for_redis(app: Stem, timeout_s: float = REDIS_WAIT_S) -> None:
    """Block until Redis answers, retrying; re-raise ``BrokerUnavailable`` after timeout."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            app.broker.ping()
            return
        except BrokerUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            log.info("waiting for Redis...")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def run_actor(
    name: str,
    app: Stem,
    serve: Callable[[trio.Nursery], Awaitable[None]],
    *,
    stop: Callable[[bool], None] | None = None,
) -> int:
    """Run ``serve(nursery)`` until it returns or a signal stops it; return 0.

    ``stop(immediate)`` is called on SIGTERM/SIGINT (immediate on a second SIGINT);
    without it, the first signal cancels ``serve``.
    """
    configure_logging(name)
    wait_for_redis(app)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, nursery.cancel_scope, stop)
            await serve(nursery)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return 0


async def _watch_signals(scope: trio.CancelScope, stop: Callable[[bool], None] | None) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        seen = 0
        async for signum in signals:
            seen += 1
            immediate = seen > 1 and signum == signal.SIGINT
            if stop is None:
                scope.cancel()
            else:
                stop(immediate)
