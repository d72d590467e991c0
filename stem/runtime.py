"""What every actor process does around its main loop, written once.

``run_actor(name, app, serve)`` configures logging, logs a start banner (version, app,
namespace, Redis URL with its password redacted, and the actor's own settings), waits
for Redis (an actor started by ``stem supervise`` may come up before the embedded Redis
answers; SIGTERM/SIGINT while it waits stops it there, exit 0), runs ``serve`` under
trio, and turns SIGTERM/SIGINT into a graceful stop: the first signal calls the actor's
``stop`` callback (or cancels it), a second SIGINT cancels at once. Returns the exit code.

A stem error that ends the actor (``BrokerRefused``: Redis refuses in a way waiting will
not heal) leaves trio wrapped in an ``ExceptionGroup``; ``run_actor`` re-raises the bare
error, so the CLI edge prints its one line and exits with its code (3 for Redis).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import trio

from stem.errors import BrokerUnavailable, StemError
from stem.observe.logs import configure_logging

if TYPE_CHECKING:
    from stem.app import Stem

log = logging.getLogger("stem.runtime")

#: How long an actor waits for Redis at start before giving up (exit code 3).
REDIS_WAIT_S = 30.0


def wait_for_redis(app: Stem, timeout_s: float = REDIS_WAIT_S) -> bool:
    """Block until Redis answers, retrying; re-raise ``BrokerUnavailable`` after timeout.

    Returns False when SIGTERM or SIGINT arrived meanwhile: the actor was stopped before
    it started (it holds nothing yet) and should return 0, not die of the signal.
    """
    try:
        with _signals_raise_stop():
            _wait_for_redis(app, timeout_s)
    except _StopBeforeStart:
        log.info("stop requested while waiting for Redis")
        return False
    return True


def _wait_for_redis(app: Stem, timeout_s: float) -> None:
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


class _StopBeforeStart(Exception):
    """SIGTERM/SIGINT before the actor's trio loop (and its signal receiver) runs."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _StopBeforeStart


@contextlib.contextmanager
def _signals_raise_stop() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT raise ``_StopBeforeStart`` (in the main
    thread; elsewhere signals cannot be handled and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGTERM, signal.SIGINT)
    saved = {signum: signal.signal(signum, _raise_stop) for signum in stops}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def run_actor(
    name: str,
    app: Stem,
    serve: Callable[[trio.Nursery], Awaitable[None]],
    *,
    stop: Callable[[bool], None] | None = None,
    details: Mapping[str, object] | None = None,
) -> int:
    """Run ``serve(nursery)`` until it returns or a signal stops it; return 0.

    ``stop(immediate)`` is called on SIGTERM/SIGINT (immediate on a second SIGINT);
    without it, the first signal cancels ``serve``. ``details`` (queues, concurrency,
    pools...) go into the start banner.
    """
    configure_logging(name)
    log.info("%s starting: %s", name, banner(app, details or {}))
    if not wait_for_redis(app):
        log.info("%s stopped before it started", name)
        return 0
    try:
        _run(serve, stop)
    except BaseException as exc:
        log.info("%s stopped: %s", name, type(exc).__name__)
        raise
    log.info("%s stopped", name)
    return 0


def banner(app: Stem, details: Mapping[str, object]) -> str:
    """``key=value`` pairs saying what this actor is: version, app, Redis, settings."""
    from importlib.metadata import PackageNotFoundError, version

    from stem.broker import redact
    from stem.config import resolve_redis_url

    url = resolve_redis_url(app.redis_url)
    fields: dict[str, object] = {
        "version": _version(version, PackageNotFoundError),
        "namespace": app.namespace,
        "redis": redact(url) if url else "-",
        **details,
    }
    return " ".join(f"{k}={_show(v)}" for k, v in fields.items())


def _version(version: Callable[[str], str], missing: type[Exception]) -> str:
    try:
        return version("stem-jobs")
    except missing:
        return "unknown"


def _show(value: object) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _run(
    serve: Callable[[trio.Nursery], Awaitable[None]],
    stop: Callable[[bool], None] | None,
) -> None:
    # What start-up made (modules, the app, its tasks) lives as long as the process: out
    # of the collector's way, a full collection no longer walks it all again. Halved the
    # time a worker spent in the collector (bench.observe; docs/performance.md).
    gc.freeze()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, nursery.cancel_scope, stop)
            await serve(nursery)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        raise first_stem_error(group) from group


def first_stem_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first ``StemError`` inside ``group`` (however nested), else ``group`` itself.

    trio wraps whatever leaves a nursery in an ``ExceptionGroup``; the CLI edge maps
    stem's own errors to exit codes, so the one that ended the actor is unwrapped.
    """
    found: BaseException | None = group.split(StemError)[0]
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found if found is not None else group


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
