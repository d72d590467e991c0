"""Running the server: in-process with ``open_toxiproxy_server``, and as a CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import trio

from chaos.proxy import open_toxiproxy_server
from tests.chaos.support import IO_TIMEOUT_S, address, api

_ROOT = Path(__file__).resolve().parents[2]


async def _echo(stream: trio.SocketStream) -> None:
    async with stream:
        async for data in stream:
            await stream.send_all(data)


async def test_an_in_process_server_proxies_and_closes_its_proxies_when_the_block_ends() -> None:
    async with trio.open_nursery() as nursery:
        [echo] = await nursery.start(partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
        upstream = f"127.0.0.1:{echo.socket.getsockname()[1]}"
        with trio.fail_after(IO_TIMEOUT_S):
            async with open_toxiproxy_server() as url:
                body = {"name": "in", "upstream": upstream, "listen": "127.0.0.1:0"}
                status, proxy = await trio.to_thread.run_sync(api, url, "POST", "/proxies", body)
                assert status == 201
                host, port = address(proxy["listen"])
                async with await trio.open_tcp_stream(host, port) as stream:
                    await stream.send_all(b"in process")
                    assert await stream.receive_some(100) == b"in process"
            with pytest.raises(OSError):
                await trio.open_tcp_stream(host, port)
        nursery.cancel_scope.cancel()


def _start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chaos.proxy", "--port", "0", *args],
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_prints_its_url_and_exits_0_on_a_stop_signal(signum: signal.Signals) -> None:
    proc = _start_cli()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("toxiproxy: listening on http://127.0.0.1:")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=IO_TIMEOUT_S)
    assert (proc.returncode, err) == (0, "")


def test_the_cli_exits_2_with_one_line_when_the_api_port_is_taken(toxiproxy_url: str) -> None:
    port = toxiproxy_url.rsplit(":", 1)[1]
    proc = subprocess.run(
        [sys.executable, "-m", "chaos.proxy", "--port", port],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=IO_TIMEOUT_S * 2,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "cannot listen" in proc.stderr
