"""Bring up a stem stack for a chaos scenario, and take all of it down again.

::

    with open_stack("latency", appendonly=False, lease_s=12.0) as stack:
        link = stack.proxy("redis")              # Toxiproxy proxy in front of Redis
        stack.supervise(link, workers=2)         # real actor processes, through the proxy
        producer = stack.producer(link, total=100, rate_per_s=50).start()
        link.add_toxic(type="latency", attributes={"latency": 50, "jitter": 10})
        ...
        producer.join()
        stack.ledger.counts()                    # runs per job id, outside stem

What a :class:`Stack` holds (the interface the scenarios and the soak mode use):

- ``redis``: :class:`~chaos.stack.redis.ChaosRedis`, a private ``redis-server`` in the
  stack's temp folder (AOF with ``appendonly=True``: ``appendfsync everysec`` unless the
  scenario asks for ``always``);
  ``redis.client()`` is a *direct* redis-py client, ``redis.restart(sig)`` kills it.
- ``toxiproxy``: a ``toxiproxy.Toxiproxy`` client (``$TOXIPROXY_URL``, the URL given, or
  a private ``python -m chaos.proxy``). ``stack.proxy(name)`` creates a proxy in front of
  Redis on ``127.0.0.1:0`` (named ``<namespace>-<name>``), ``stack.url(proxy)`` its URL.
  Use one proxy per actor that a scenario cuts off alone.
- actors: ``supervise``, ``worker``, ``reclaimer``, ``beat`` start real ``python -m stem``
  processes (each its own process group) on :mod:`chaos.jobs` through a proxy and return
  :class:`~chaos.stack.actors.Actor` handles; ``stack.actors`` lists all of them.
- ``producer(proxy, ...)``: a :class:`~chaos.stack.producer.Producer` enqueueing through
  the proxy; ``app(proxy)`` a producer-side ``Stem`` on the proxy; ``direct`` a ``Stem``
  on the direct URL for reading job records and the DLQ.
- ``ledger``: :class:`Ledger`, the file every run of a job appends its id to.
- ``namespace``: a fresh stem namespace, so stacks may share a Redis or a Toxiproxy.

Teardown (always, also on error): every actor gets SIGTERM to its group, then SIGKILL
after a grace period; the proxies are destroyed, the clients closed, Redis stopped, a
private proxy server stopped. ``stack.leftovers`` then lists any process started while
the stack was up that is still alive (psutil), which the checker reports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from toxiproxy import Toxiproxy
from toxiproxy.proxy import Proxy

from chaos.stack.actors import Actor, actor_env, stem_argv, wait_for
from chaos.stack.producer import Producer, Sent, enqueue_one
from chaos.stack.redis import ChaosRedis
from chaos.stack.toxi import client_for, open_toxiproxy
from stem import Stem

__all__ = ["Actor", "Ledger", "Producer", "Sent", "Stack", "enqueue_one", "open_stack", "wait_for"]


@dataclass(frozen=True)
class Ledger:
    """The execution ledger: one line per run of a job, written by the task itself."""

    path: Path

    def runs(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []

    def counts(self) -> Counter[str]:
        return Counter(self.runs())


@dataclass
class Stack:
    """Handles to everything a scenario drives; see the module docstring."""

    folder: Path
    namespace: str
    redis: ChaosRedis
    toxiproxy: Toxiproxy
    lease_s: float
    ledger: Ledger
    actors: list[Actor] = field(default_factory=list)
    proxies: list[Proxy] = field(default_factory=list)
    apps: list[Stem] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    _direct: Stem | None = None

    # -- network -------------------------------------------------------------------

    def proxy(self, name: str) -> Proxy:
        """A new Toxiproxy proxy ``<namespace>-<name>`` in front of this stack's Redis."""
        proxy = self.toxiproxy.create(
            name=f"{self.namespace}-{name}",
            listen="127.0.0.1:0",
            upstream=f"127.0.0.1:{self.redis.port}",
        )
        self.proxies.append(proxy)
        return proxy

    @staticmethod
    def url(proxy: Proxy) -> str:
        host, port = proxy.listen.rsplit(":", 1)
        return f"redis://{host}:{port}/0"

    # -- apps ------------------------------------------------------------------------

    def app(self, proxy: Proxy | None) -> Stem:
        """A producer-side app on the proxy (or, with ``None``, on the direct URL)."""
        url = self.url(proxy) if proxy is not None else self.redis.url
        app = Stem(url, namespace=self.namespace, lease_s=self.lease_s)
        self.apps.append(app)
        return app

    @property
    def direct(self) -> Stem:
        """An app on the direct URL, for reading records and the DLQ (opened once)."""
        if self._direct is None:
            self._direct = self.app(None)
        return self._direct

    def producer(
        self, proxy: Proxy, total: int, rate_per_s: float, seconds: float = 0.0
    ) -> Producer:
        return Producer(self.app(proxy), total, rate_per_s, seconds)

    # -- actors ----------------------------------------------------------------------

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Actor:
        """Start any ``stem`` command line as an actor of this stack."""
        full_env = actor_env(self.ledger.path, self.lease_s, env)
        actor = Actor(name, argv, full_env, self.folder / f"{name}.log").start()
        self.actors.append(actor)
        return actor

    def worker(self, proxy: Proxy, name: str, *options: str) -> Actor:
        argv = stem_argv(self.url(proxy), self.namespace, "worker", "--name", name, *options)
        return self.start(name, argv)

    def reclaimer(self, proxy: Proxy, interval_s: float = 0.5, name: str = "reclaimer") -> Actor:
        argv = stem_argv(
            self.url(proxy), self.namespace, "reclaim", "--interval-s", str(interval_s)
        )
        return self.start(name, argv)

    def beat(self, proxy: Proxy, name: str, app: str = "chaos.beat_app:app") -> Actor:
        return self.start(
            name, stem_argv(self.url(proxy), self.namespace, "beat", "--name", name, app=app)
        )

    def supervise(self, proxy: Proxy, *options: str, name: str = "supervise") -> Actor:
        """``stem supervise`` through the proxy (no beat unless ``--beat`` is passed)."""
        data = self.folder / f"{name}-data"
        argv = stem_argv(self.url(proxy), self.namespace, "supervise", "--data-dir", str(data))
        if "--beat" not in options:
            argv.append("--no-beat")
        return self.start(name, [*argv, *options])

    # -- teardown --------------------------------------------------------------------

    def close(self) -> None:
        for actor in reversed(self.actors):
            actor.stop()
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                proxy.destroy()
        for app in self.apps:
            app.close()
        self.redis.close()


@contextlib.contextmanager
def open_stack(
    name: str,
    *,
    appendonly: bool = False,
    appendfsync: str = "everysec",
    lease_s: float = 12.0,
    toxiproxy_url: str | None = None,
    keep: bool = bool(os.environ.get("CHAOS_KEEP")),
) -> Iterator[Stack]:
    """A running Redis and Toxiproxy for scenario ``name``; everything is stopped on exit.

    The folder (logs, ledger, Redis data) is removed afterwards unless ``keep``.
    """
    before = {p.pid for p in _descendants()}
    folder = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-"))
    namespace = f"chaos-{name}-{os.urandom(3).hex()}"
    redis = ChaosRedis(folder / "redis", appendonly=appendonly, appendfsync=appendfsync)
    stack: Stack | None = None
    try:
        with open_toxiproxy(toxiproxy_url) as api:
            redis.start()
            ledger = Ledger(folder / "ledger.txt")
            stack = Stack(folder, namespace, redis, client_for(api), lease_s, ledger)
            try:
                yield stack
            finally:
                stack.close()
    finally:
        redis.close()
        alive = [p for p in _descendants() if p.pid not in before]
        if stack is not None:
            stack.leftovers = [f"{p.pid} {_cmdline(p)}" for p in alive]
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def _descendants() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def _cmdline(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(proc.cmdline())[:120]
    return "?"
