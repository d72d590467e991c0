"""``python -m chaos.proxy [--host H] [--port P]``: run the server until SIGTERM/SIGINT.

Prints ``toxiproxy: listening on <url>`` on stdout once the API accepts requests (with
``--port 0``, the URL has the port the system chose), and exits 0 on SIGTERM or SIGINT
after closing every proxy. Exit code 2: bad arguments or the API port cannot be bound.
"""

from __future__ import annotations

import argparse
import signal
import sys

import trio

from chaos.proxy.server import DEFAULT_HOST, DEFAULT_PORT, serve_toxiproxy


async def _main(host: str, port: int) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_toxiproxy, host, port)
            print(f"toxiproxy: listening on {url}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the server; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m chaos.proxy", description="A Toxiproxy-compatible TCP proxy."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="API address (%(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port (%(default)s)")
    args = parser.parse_args(argv)
    failed = False
    try:
        trio.run(_main, args.host, args.port)
    except* OSError as group:
        failed = True
        reason = "; ".join(str(exc) for exc in _leaves(group))
        print(f"toxiproxy: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
