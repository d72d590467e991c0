"""A private Redis Cluster for tests: real ``redis-server --cluster-enabled yes`` processes.

``LocalCluster(tmp, masters=3, replicas=0).start()`` starts the nodes on free loopback
ports, joins them with ``redis-cli --cluster create`` and waits (at most ``FORM_TIMEOUT_S``)
until every node reports ``cluster_state:ok``; it fails with what it saw otherwise.
``stop()`` (or leaving the ``with`` block) ends every node. Nodes die with the process
that started them (parent-death signal, as ``EmbeddedRedis``), so a killed run leaves none.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from stem.embedded import find_redis_server, server_argv, wait_until_serving
from supervisor import set_parent_death_signal

#: How long the cluster may take to form before the fixture fails.
FORM_TIMEOUT_S = 20.0


#: A cluster node also listens on its port + 10000 (the cluster bus).
BUS_OFFSET = 10_000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is free too and below 65536.

    An ephemeral port from the OS is often above 55535, where the bus port cannot exist.
    """
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20_000, 40_000)
        if _free(port) and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) for a cluster node")


class Node:
    """One cluster-enabled redis-server on 127.0.0.1 (node table in ``nodes.conf``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = cluster_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = server_argv(find_redis_server(), self.port, self.data_dir, appendonly=False)
        with (self.data_dir / "redis.conf").open("a") as conf:
            conf.write("cluster-enabled yes\n")
            conf.write(f'cluster-config-file "{self.data_dir / "nodes.conf"}"\n')
            conf.write("cluster-node-timeout 2000\n")
        die_with_us = functools.partial(
            set_parent_death_signal, signal.SIGKILL, parent_pid=os.getpid()
        )
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            preexec_fn=die_with_us,  # noqa: PLW1509
        )
        wait_until_serving(self.port)

    def client(self) -> redis.Redis:
        """A plain client of this node (decoded replies), for CLUSTER and INFO commands."""
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class LocalCluster:
    """``masters`` masters with ``replicas`` replicas each, on 127.0.0.1."""

    def __init__(self, data_dir: Path, *, masters: int = 3, replicas: int = 0) -> None:
        count = masters * (1 + replicas)
        self.nodes = [Node(data_dir / f"node{i}") for i in range(count)]
        self.replicas = replicas

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every node as a seed."""
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return f"redis+cluster://{hosts}/"

    def start(self) -> LocalCluster:
        """Start every node, form the cluster and wait until it serves every slot."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("the cluster tests need redis-cli on PATH to form a cluster")
        try:
            for node in self.nodes:
                node.start()
            argv = [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes)]
            argv += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=FORM_TIMEOUT_S, check=False
            )
            if done.returncode != 0:
                output = done.stdout + done.stderr
                raise RuntimeError(f"redis-cli --cluster create failed:\n{output}")
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout_s: float = FORM_TIMEOUT_S) -> None:
        """Block until every node says ``cluster_state:ok`` and knows every other node, and
        every replica has synced with its master."""
        deadline = time.monotonic() + timeout_s
        seen = ""
        while time.monotonic() < deadline:
            infos = [n.client().cluster("INFO") for n in self.nodes if n.proc is not None]
            known = [int(i.get("cluster_known_nodes", 0)) for i in infos]
            states = [i.get("cluster_state") for i in infos]
            live = [n for n in self.nodes if n.proc is not None]
            links = [n.client().info("replication").get("master_link_status") for n in live]
            synced = all(link in (None, "up") for link in links)
            formed = all(k == len(self.nodes) for k in known)
            if synced and formed and all(s == "ok" for s in states):
                return
            seen = f"states {states}, known nodes {known}, replica links {links}"
            time.sleep(0.05)
        raise RuntimeError(f"the cluster did not form within {timeout_s:.0f} s: {seen}")

    def live(self) -> Node:
        """A node that runs (the first one may have been stopped by the test)."""
        return next(n for n in self.nodes if n.proc is not None)

    def keyslot(self, key: str) -> int:
        """The hash slot of ``key``, as the cluster computes it."""
        return int(self.live().client().cluster("KEYSLOT", key))

    def master_of(self, slot: int) -> Node:
        """The node that serves ``slot`` now."""
        for start, end, master, *_ in self.live().client().cluster("SLOTS"):
            if start <= slot <= end:
                port = int(master[1])
                return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no node serves slot {slot}")

    def masters(self) -> list[Node]:
        """The nodes that are masters now."""
        live = [n for n in self.nodes if n.proc is not None]
        return [n for n in live if n.client().info("replication")["role"] == "master"]

    def stop(self) -> None:
        """Kill every node (their data is disposable)."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
