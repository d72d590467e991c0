"""The Redis under test: a private ``redis-server`` that scenarios can kill and restart.

Unlike :class:`stem.embedded.EmbeddedRedis` it can be stopped with SIGKILL as well as
SIGTERM and started again on the same port and data folder (AOF when ``appendonly``, with
``appendfsync`` Redis' default ``everysec`` or ``always``), and it hands out a *direct*
client: the checker, the fuzzer and ``CONFIG SET`` use it, never the proxied path the
actors use.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

import redis

from stem.embedded import find_redis_server, free_port, server_argv, wait_until_serving

_STOP_TIMEOUT_S = 10.0


class ChaosRedis:
    """One ``redis-server`` on 127.0.0.1; ``start``/``kill``/``restart`` it; ``client()``."""

    def __init__(
        self, data_dir: Path, *, appendonly: bool = False, appendfsync: str = "everysec"
    ) -> None:
        self.data_dir = data_dir
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.port = free_port()
        self.binary = find_redis_server()
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        """The direct (unproxied) URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the server (own session, so a signal to the harness' group misses it)."""
        argv = server_argv(self.binary, self.port, self.data_dir, appendonly=self.appendonly)
        if self.appendonly:
            with (self.data_dir / "redis.conf").open("a") as conf:
                conf.write(f"appendfsync {self.appendfsync}\n")
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_until_serving(self.port, timeout_s=20.0)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send ``sig`` and reap the server (SIGKILL after 10 s)."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(sig)
        try:
            self._proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop with ``sig``, then start again on the same port and data folder."""
        self.stop(sig)
        self.start()

    def client(self) -> redis.Redis:
        """A direct client (shared; retries nothing, times out after 5 s)."""
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.url, socket_timeout=5.0, socket_connect_timeout=5.0
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.stop()
