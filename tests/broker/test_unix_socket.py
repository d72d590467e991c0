"""A Redis reached over a Unix socket (``unix://`` URLs): the broker and a worker on it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trio

from stem import Stem
from stem.embedded import find_redis_server
from stem.worker import WorkerOptions, serve_worker


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    """A private redis-server listening only on a Unix socket."""
    path = tmp_path / "redis.sock"
    conf = tmp_path / "redis.conf"
    conf.write_text(f'port 0\nunixsocket "{path}"\ndir "{tmp_path}"\nsave ""\n')
    server = subprocess.Popen([find_redis_server(), str(conf)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(unix_socket_path=str(path)).ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                assert time.monotonic() < deadline, "redis-server did not open its socket"
                time.sleep(0.02)  # polling, with the deadline above
        yield path
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_job_is_enqueued_run_and_read_back_over_a_unix_socket(socket_path: Path) -> None:
    app = Stem(f"unix://{socket_path}", namespace="unix")

    @app.task(name="tests.unix.add")
    async def add(a: int, b: int) -> int:
        return a + b

    handle = add.enqueue(2, 3)
    trio.run(serve_worker, app, WorkerOptions(burst=True))
    assert handle.result(timeout_s=30) == 5
    app.close()
