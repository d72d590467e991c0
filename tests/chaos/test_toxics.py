"""Each toxic's effect on real connections, measured with generous tolerances.

An echo server sits behind the proxy; timings are wall-clock on a shared machine, so
lower bounds are tight (a toxic must cost at least what it promises) and upper bounds
loose (it must not hang).
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from toxiproxy.proxy import Proxy

from tests.chaos.support import (
    IO_TIMEOUT_S,
    api,
    connect,
    echo_through,
    recv_counted,
    recv_exactly,
    recv_until_closed,
    round_trip_s,
)

_SLACK_S = 3.0  # upper tolerance for a busy machine


def _closed_or_reset(sock: socket.socket) -> tuple[bytes, str]:
    """Read until the connection ends; the bytes read and how it ended."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return bytes(data), "reset"
    return bytes(data), "closed"


def _nothing_arrives_within(sock: socket.socket, window_s: float) -> bool:
    sock.settimeout(window_s)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(IO_TIMEOUT_S)
    return False


def test_latency_delays_every_round_trip_by_at_least_the_latency(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="latency", attributes={"latency": 200})
    with connect(echo_proxy) as sock:
        for _ in range(2):
            assert 0.2 <= round_trip_s(sock, b"ping") < 0.2 + _SLACK_S


def test_latency_upstream_and_downstream_add_up(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(name="up", type="latency", stream="upstream", attributes={"latency": 150})
    echo_proxy.add_toxic(name="down", type="latency", attributes={"latency": 150})
    with connect(echo_proxy) as sock:
        assert 0.3 <= round_trip_s(sock, b"ping") < 0.3 + _SLACK_S


def test_a_toxic_added_or_removed_applies_to_a_live_connection(echo_proxy: Proxy) -> None:
    with connect(echo_proxy) as sock:
        assert round_trip_s(sock, b"fast") < 0.2
        echo_proxy.add_toxic(name="lag", type="latency", attributes={"latency": 300})
        assert round_trip_s(sock, b"slow") >= 0.3
        echo_proxy.destroy_toxic("lag")
        assert round_trip_s(sock, b"fast again") < 0.3


def test_bandwidth_limits_throughput_to_about_the_rate(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="bandwidth", attributes={"rate": 100})  # KB/s
    payload = os.urandom(60_000)
    started = time.monotonic()
    assert echo_through(echo_proxy, payload) == payload
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.6 * 4 + _SLACK_S  # 0.6 s at exactly 100 KB/s


def test_timeout_0_holds_the_data_until_the_toxic_is_removed(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(name="hole", type="timeout", attributes={"timeout": 0})
    with connect(echo_proxy) as sock:
        sock.sendall(b"held")
        assert _nothing_arrives_within(sock, 0.5)
        echo_proxy.destroy_toxic("hole")
        assert recv_exactly(sock, 4) == b"held"
        assert round_trip_s(sock, b"flowing") < _SLACK_S


def test_timeout_above_0_closes_the_connection_after_the_timeout_without_data(
    echo_proxy: Proxy,
) -> None:
    echo_proxy.add_toxic(type="timeout", attributes={"timeout": 300})
    with connect(echo_proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"lost")
        data, _ = _closed_or_reset(sock)
        elapsed = time.monotonic() - started
    assert data == b""
    assert 0.25 <= elapsed < 0.3 + _SLACK_S


def test_reset_peer_resets_the_connection_after_its_timeout(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="reset_peer", attributes={"timeout": 200})
    with connect(echo_proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"doomed")
        with pytest.raises(ConnectionResetError):
            sock.recv(65536)
        assert 0.15 <= time.monotonic() - started < 0.2 + _SLACK_S


def test_reset_peer_with_timeout_0_resets_on_the_first_data(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with connect(echo_proxy) as sock:
        sock.sendall(b"doomed")
        with pytest.raises(ConnectionResetError):
            sock.recv(65536)


def test_slicer_delivers_every_byte_in_several_pieces(echo_proxy: Proxy) -> None:
    attributes = {"average_size": 100, "size_variation": 50, "delay": 2000}
    echo_proxy.add_toxic(type="slicer", attributes=attributes)
    payload = os.urandom(3000)
    with connect(echo_proxy) as sock:
        sock.sendall(payload)
        data, pieces = recv_counted(sock, len(payload))
    assert data == payload
    assert pieces >= 3  # ~30 slices 2 ms apart cannot all arrive in one or two reads


def test_limit_data_closes_the_connection_after_that_many_bytes(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="limit_data", attributes={"bytes": 1000})
    payload = os.urandom(5000)
    with connect(echo_proxy) as sock:
        sock.sendall(payload)
        data, _ = _closed_or_reset(sock)
    assert data == payload[:1000]


def test_limit_data_counts_bytes_across_writes(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="limit_data", attributes={"bytes": 10})
    with connect(echo_proxy) as sock:
        assert round_trip_s(sock, b"123456") < _SLACK_S
        sock.sendall(b"7890abc")
        data, _ = _closed_or_reset(sock)
    assert data == b"7890"


def test_slow_close_delays_the_close_by_the_delay(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="slow_close", attributes={"delay": 400})
    with connect(echo_proxy) as sock:
        assert round_trip_s(sock, b"bye") < _SLACK_S
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        data, _ = recv_until_closed(sock)
        elapsed = time.monotonic() - started
    assert data == b""
    assert 0.4 <= elapsed < 0.4 + _SLACK_S


def test_a_toxic_with_toxicity_0_never_applies(echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="timeout", toxicity=0.0, attributes={"timeout": 0})
    for _ in range(5):
        assert echo_through(echo_proxy, b"untouched") == b"untouched"


def test_a_toxic_with_toxicity_between_0_and_1_applies_to_some_connections(
    echo_proxy: Proxy,
) -> None:
    echo_proxy.add_toxic(type="latency", toxicity=0.5, attributes={"latency": 150})
    delays = []
    for _ in range(16):
        with connect(echo_proxy) as sock:
            delays.append(round_trip_s(sock, b"coin"))
    slow = sum(d >= 0.15 for d in delays)
    assert 0 < slow < 16  # all-or-nothing has probability 2 * 0.5**16


def test_updating_a_timeout_toxic_keeps_holding_the_data(
    toxiproxy_url: str, echo_proxy: Proxy
) -> None:
    echo_proxy.add_toxic(name="hole", type="timeout", attributes={"timeout": 0})
    with connect(echo_proxy) as sock:
        sock.sendall(b"held")
        update = {"attributes": {"timeout": 0}, "toxicity": 1.0}
        assert api(toxiproxy_url, "POST", "/proxies/echo/toxics/hole", update)[0] == 200
        assert _nothing_arrives_within(sock, 0.3)
        echo_proxy.destroy_toxic("hole")
        assert recv_exactly(sock, 4) == b"held"
