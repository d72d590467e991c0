"""The proxy's HTTP API through toxiproxy-python, checked against Toxiproxy's behaviour.

These run against ``$TOXIPROXY_URL`` when it is set, so the same file checks that our
server and the Go one agree.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest
import redis
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy

from stem.embedded import EmbeddedRedis
from tests.chaos.support import (
    IO_TIMEOUT_S,
    EchoServer,
    address,
    api,
    connect,
    echo_through,
    recv_exactly,
    round_trip_s,
)


def _refused(proxy: Proxy) -> bool:
    try:
        socket.create_connection(address(proxy.listen), timeout=IO_TIMEOUT_S).close()
    except ConnectionRefusedError:
        return True
    return False


def test_version_answers_with_a_version_string(toxiproxy: Toxiproxy) -> None:
    version = toxiproxy.version()
    assert isinstance(version, bytes)
    assert version.strip() != b""


def test_a_proxy_created_on_port_0_reports_the_port_it_listens_on(
    toxiproxy: Toxiproxy, echo_server: EchoServer
) -> None:
    proxy = toxiproxy.create(name="p0", upstream=echo_server.hostport, listen="127.0.0.1:0")
    host, port = address(proxy.listen)
    assert (host, proxy.enabled, proxy.upstream) == ("127.0.0.1", True, echo_server.hostport)
    assert port != 0
    listed = toxiproxy.proxies()["p0"]
    assert (listed.listen, listed.upstream, listed.enabled) == (proxy.listen, proxy.upstream, True)
    with connect(proxy) as sock:
        assert round_trip_s(sock, b"hello") < IO_TIMEOUT_S


@pytest.mark.parametrize("size", [1, 1000, 64 * 1024 + 7, 1024 * 1024])
def test_bytes_pass_through_unchanged_in_both_directions(echo_proxy: Proxy, size: int) -> None:
    payload = os.urandom(size)
    assert echo_through(echo_proxy, payload) == payload


def test_interleaved_connections_each_get_their_own_bytes_back(echo_proxy: Proxy) -> None:
    with connect(echo_proxy) as first, connect(echo_proxy) as second:
        for _ in range(10):
            a, b = os.urandom(4096), os.urandom(4096)
            first.sendall(a)
            second.sendall(b)
            assert (recv_exactly(second, len(b)), recv_exactly(first, len(a))) == (b, a)


def test_a_duplicate_proxy_name_is_refused_with_409(
    toxiproxy: Toxiproxy, toxiproxy_url: str, echo_proxy: Proxy
) -> None:
    with pytest.raises(ProxyExists):
        toxiproxy.create(name="echo", upstream=echo_proxy.upstream)
    status, body = api(
        toxiproxy_url, "POST", "/proxies", {"name": "echo", "upstream": echo_proxy.upstream}
    )
    assert (status, body) == (409, {"error": "proxy already exists", "status": 409})


def test_an_unknown_proxy_is_404(toxiproxy: Toxiproxy, toxiproxy_url: str) -> None:
    ghost = Proxy(name="ghost", upstream="127.0.0.1:1", enabled=True, listen="127.0.0.1:1")
    with pytest.raises(NotFound):
        ghost.toxics()
    with pytest.raises(NotFound):
        ghost.destroy()
    assert toxiproxy.get_proxy("ghost") is None
    status, body = api(toxiproxy_url, "GET", "/proxies/ghost")
    assert (status, body) == (404, {"error": "proxy not found", "status": 404})


def test_a_create_without_name_or_upstream_is_400(toxiproxy_url: str, toxiproxy: Toxiproxy) -> None:
    status, body = api(toxiproxy_url, "POST", "/proxies", {"upstream": "127.0.0.1:1"})
    assert (status, body["status"]) == (400, 400)
    assert "name" in body["error"]
    status, body = api(toxiproxy_url, "POST", "/proxies", {"name": "x"})
    assert (status, body["status"]) == (400, 400)
    assert "upstream" in body["error"]


def test_a_body_that_is_not_json_is_400(toxiproxy_url: str, echo_proxy: Proxy) -> None:
    for path in ("/proxies", "/proxies/echo/toxics", "/populate"):
        status, body = api(toxiproxy_url, "POST", path, b"{not json")
        assert (status, body["status"]) == (400, 400), path
        assert body["error"].startswith("bad request body"), path


def test_an_unknown_toxic_type_is_400(toxiproxy_url: str, echo_proxy: Proxy) -> None:
    with pytest.raises(InvalidToxic):
        echo_proxy.add_toxic(type="no_such_toxic")
    status, body = api(toxiproxy_url, "POST", "/proxies/echo/toxics", {"type": "nope"})
    assert (status, body) == (400, {"error": "invalid toxic type", "status": 400})


def test_toxic_attributes_of_the_wrong_type_or_a_bad_stream_are_400(
    toxiproxy_url: str, echo_proxy: Proxy
) -> None:
    bad_attributes = {"type": "latency", "attributes": {"latency": "slow"}}
    status, _ = api(toxiproxy_url, "POST", "/proxies/echo/toxics", bad_attributes)
    assert status == 400
    bad_stream = {"type": "latency", "stream": "sideways"}
    status, body = api(toxiproxy_url, "POST", "/proxies/echo/toxics", bad_stream)
    assert (status, body["status"]) == (400, 400)
    assert echo_proxy.toxics() == {}


def test_a_duplicate_toxic_name_is_409_and_an_unknown_toxic_404(
    toxiproxy_url: str, echo_proxy: Proxy
) -> None:
    echo_proxy.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(ProxyExists):
        echo_proxy.add_toxic(type="latency", attributes={"latency": 2})
    with pytest.raises(NotFound):
        echo_proxy.destroy_toxic("ghost")
    status, body = api(toxiproxy_url, "GET", "/proxies/echo/toxics/ghost")
    assert (status, body) == (404, {"error": "toxic not found", "status": 404})


def test_a_toxic_gets_toxiproxys_defaults(toxiproxy_url: str, echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(type="latency", attributes={"latency": 5})
    status, body = api(toxiproxy_url, "POST", "/proxies/echo/toxics", {"type": "slicer"})
    assert status == 200
    toxics = echo_proxy.toxics()
    assert set(toxics) == {"latency_downstream", "slicer_downstream"}
    latency = toxics["latency_downstream"]
    assert (latency.type, latency.stream, latency.toxicity) == ("latency", "downstream", 1.0)
    assert latency.attributes == {"latency": 5, "jitter": 0}
    assert body["attributes"] == {"average_size": 0, "size_variation": 0, "delay": 0}


def test_updating_a_toxic_changes_only_the_fields_given(
    toxiproxy_url: str, echo_proxy: Proxy
) -> None:
    echo_proxy.add_toxic(name="lag", type="latency", attributes={"latency": 5, "jitter": 1})
    update = {"attributes": {"latency": 50}}
    status, body = api(toxiproxy_url, "POST", "/proxies/echo/toxics/lag", update)
    assert (status, body["attributes"]) == (200, {"latency": 50, "jitter": 1})
    assert echo_proxy.get_toxic("lag").attributes == {"latency": 50, "jitter": 1}


def test_deleting_a_toxic_or_proxy_answers_204(toxiproxy_url: str, echo_proxy: Proxy) -> None:
    echo_proxy.add_toxic(name="lag", type="latency")
    assert api(toxiproxy_url, "DELETE", "/proxies/echo/toxics/lag") == (204, None)
    assert api(toxiproxy_url, "DELETE", "/proxies/echo") == (204, None)
    assert _refused(echo_proxy)


def test_disabling_a_proxy_closes_its_listener_and_connections_and_enabling_reopens_it(
    toxiproxy: Toxiproxy, echo_proxy: Proxy
) -> None:
    with connect(echo_proxy) as live:
        round_trip_s(live, b"before")
        echo_proxy.disable()
        assert toxiproxy.get_proxy("echo").enabled is False
        try:
            closed = live.recv(1) == b""
        except ConnectionResetError:
            closed = True
        assert closed
    assert _refused(echo_proxy)
    echo_proxy.enable()
    assert toxiproxy.get_proxy("echo").listen == echo_proxy.listen
    with connect(echo_proxy) as again:
        round_trip_s(again, b"after")


def test_the_down_context_disables_the_proxy_only_inside_the_block(echo_proxy: Proxy) -> None:
    with echo_proxy.down():
        assert _refused(echo_proxy)
    assert echo_through(echo_proxy, b"up again") == b"up again"


def test_reset_removes_all_toxics_and_enables_all_proxies(
    toxiproxy: Toxiproxy, echo_proxy: Proxy
) -> None:
    echo_proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    echo_proxy.disable()
    assert toxiproxy.reset() is True
    proxy = toxiproxy.get_proxy("echo")
    assert (proxy.enabled, proxy.toxics()) == (True, {})
    assert echo_through(echo_proxy, b"fresh") == b"fresh"


def test_populate_creates_proxies_and_keeps_an_identical_one(
    toxiproxy: Toxiproxy, toxiproxy_url: str, echo_server: EchoServer
) -> None:
    wanted = [{"name": "pop", "upstream": echo_server.hostport, "listen": "127.0.0.1:0"}]
    status, body = api(toxiproxy_url, "POST", "/populate", wanted)
    assert status == 201
    [created] = body["proxies"]
    assert (created["name"], created["enabled"], created["toxics"]) == ("pop", True, [])
    again = [{**wanted[0], "listen": created["listen"]}]
    status, body = api(toxiproxy_url, "POST", "/populate", again)
    assert (status, body["proxies"][0]["listen"]) == (201, created["listen"])
    assert list(toxiproxy.proxies()) == ["pop"]
    status, body = api(toxiproxy_url, "POST", "/populate", [{"name": "no-upstream"}])
    assert (status, body["status"]) == (400, 400)


def test_the_clients_populate_creates_missing_proxies(
    toxiproxy: Toxiproxy, echo_server: EchoServer
) -> None:
    created = toxiproxy.populate(
        [{"name": "a", "upstream": echo_server.hostport, "listen": "127.0.0.1:0"}]
    )
    assert [p.name for p in created] == ["a"]
    assert echo_through(created[0], b"populated") == b"populated"


def test_a_connection_whose_upstream_is_down_is_closed(toxiproxy: Toxiproxy) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{placeholder.getsockname()[1]}"  # bound, never listening
        proxy = toxiproxy.create(name="dead", upstream=dead, listen="127.0.0.1:0")
        with connect(proxy) as sock:
            try:
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
            assert closed


def test_redis_commands_pass_through_a_proxy_and_fail_while_it_is_down(
    toxiproxy: Toxiproxy, redis_server: EmbeddedRedis
) -> None:
    proxy = toxiproxy.create(
        name="redis", upstream=f"127.0.0.1:{redis_server.port}", listen="127.0.0.1:0"
    )
    host, port = address(proxy.listen)
    client = redis.Redis(host=host, port=port, socket_timeout=IO_TIMEOUT_S)
    try:
        assert client.set("chaos:through-proxy", b"yes") is True
        assert client.get("chaos:through-proxy") == b"yes"
        with proxy.down(), pytest.raises(redis.ConnectionError):
            client.ping()
        assert client.ping() is True
    finally:
        client.delete("chaos:through-proxy")
        client.close()


def test_a_client_that_resets_mid_stream_does_not_disturb_other_connections(
    echo_proxy: Proxy,
) -> None:
    with connect(echo_proxy) as steady:
        round_trip_s(steady, b"before")
        for _ in range(5):
            rude = socket.create_connection(address(echo_proxy.listen), timeout=IO_TIMEOUT_S)
            rude.sendall(os.urandom(200_000))
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()  # RST while the proxy is still relaying
        round_trip_s(steady, b"after")
    assert echo_through(echo_proxy, b"new connection") == b"new connection"
