"""Cluster URLs and cluster failures: parsed, and sorted by whether waiting heals them."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from stem.broker import RedisBroker
from stem.broker.connection import Faults
from stem.broker.urls import parse_cluster_url
from stem.errors import BrokerRefused, BrokerUnavailable, ConfigError
from tests.cluster import LocalCluster, cluster_port

CLUSTER = "redis+cluster://u:secret@h:1,h:2/"


def test_a_cluster_url_names_every_seed_node_and_the_nodes_options() -> None:
    parsed = parse_cluster_url(
        "rediss+cluster://u:p%40ss@10.0.0.5:7000,[::1]:7001/?socket_timeout=2"
    )
    assert parsed.nodes == [("10.0.0.5", 7000), ("::1", 7001)]
    assert parsed.options == {
        "username": "u",
        "password": "p@ss",
        "socket_timeout": 2.0,
        "ssl": True,
    }


@pytest.mark.parametrize(
    "url", ["redis+cluster://h:1/3", "redis+cluster://h/", "redis+cluster://h:1/?ssl_ca_cert=x"]
)
def test_a_malformed_cluster_url_is_refused_with_the_url(url: str) -> None:
    with pytest.raises(ConfigError, match="invalid Redis URL"):
        parse_cluster_url(url)


@pytest.mark.parametrize(
    "error",
    [
        MovedError("7555 127.0.0.1:7102"),
        AskError("7555 127.0.0.1:7102"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        ClusterDownError("The cluster is down"),
        SlotNotCoveredError('Slot "7555" is not covered by the cluster.'),
        redis.ConnectionError("reset"),
        # What redis-py says when it reads the slot map while a master fails over:
        RedisClusterException("startup_nodes could not agree on a valid slots cache: a vs b"),
        RedisClusterException("All slots are not covered after query all startup_nodes."),
    ],
)
def test_a_resharding_or_failover_is_unavailable_never_refused(error: Exception) -> None:
    got = Faults(CLUSTER).classify(error)  # type: ignore[arg-type]
    assert type(got) is BrokerUnavailable
    assert "refused" not in str(got) and "secret" not in str(got)


def test_a_cross_slot_call_is_a_refusal_since_waiting_cannot_heal_it() -> None:
    error = RedisClusterException("XREAD - all keys must map to the same key slot")
    assert type(Faults(CLUSTER).classify(error)) is BrokerRefused


def test_a_redirection_seen_through_a_plain_url_names_the_cluster_url_to_use() -> None:
    got = Faults("redis://h:1/0").classify(MovedError("7555 127.0.0.1:7102"))
    assert type(got) is BrokerRefused
    assert "redis+cluster://" in str(got)


def test_a_cluster_nobody_answers_for_is_unavailable_not_a_traceback() -> None:
    with pytest.raises(BrokerUnavailable):
        RedisBroker(f"redis+cluster://127.0.0.1:{cluster_port()}/")


def test_a_cluster_deadline_client_keeps_its_deadline_whatever_the_url_asks(
    cluster: LocalCluster,
) -> None:
    # Found in review: the URL's ?socket_timeout= replaced the deadline on every node.
    from stem.broker.connection import open_client

    client = open_client(f"{cluster.url.rstrip('/')}/?socket_timeout=5", deadline_s=0.5)
    assert isinstance(client, redis.RedisCluster)
    try:
        for node in client.get_nodes():  # type: ignore[no-untyped-call]
            kwargs = client.get_redis_connection(node).connection_pool.connection_kwargs
            assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.5, 0.5)
    finally:
        client.close()
