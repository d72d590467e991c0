"""The broker's roles: one small ``Protocol`` per kind of caller.

Each caller types against the role it needs, so the interface says exactly what a
backend must provide to whom, and a method no role lists is visibly the backend's own:

* ``Producer``: the app (``enqueue``, ``Stem.job``) and ``JobHandle``;
* ``WorkerBroker``: ``Worker`` (fetch, settle, hand back, recover, heartbeat);
* ``LeaseRenewer``: ``LeaseKeeper`` (what ``WorkerBroker.with_deadline`` returns);
* ``Promoter``: ``promote_round``, shared by the worker and the reclaimer;
* ``ReclaimerBroker``: ``Reclaimer``;
* ``LimiterBroker``: ``RateLimiter``; ``LimitAdmin``: ``stem limit``;
* ``Presence``: the reclaimer's, beat's and limiter's heartbeats (``stem.observe.presence``);
* ``Admin``: the CLI's ``observe`` and ``dlq`` commands;
* ``QueueControl``: the CLI's ``queue`` and ``job`` commands (pause, resume, revoke);
* ``WorkerControl``: the CLI's ``worker list|ping|stop``;
* ``ScheduleHost``: beat's ``Schedules``, through the ``ScheduleStore`` it returns.

``Broker`` is all of them: what a backend implements. ``RedisBroker`` is the one there
is; ``tests/broker/test_roles.py`` checks statically (mypy) that it satisfies every role,
and ``tests/broker/contract.py`` is the behaviour every backend must pass. Every method
blocks; actors call them from threads (``trio.to_thread.run_sync`` or a worker's own
``ThreadPool``); only a ``PendingFetch`` is also polled on a worker's trio thread. Connection
failures raise ``BrokerUnavailable``, permanent refusals ``BrokerRefused``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from stem.broker.base import (
    DeadEntry,
    DefinitionChange,
    Delivery,
    JobRecord,
    LimitRound,
    LimitSpec,
    NewJob,
    QueueStats,
    ReclaimStats,
    Renewal,
    ScheduleSnapshot,
    Settlement,
)


class Producer(Protocol):
    """Adding jobs and reading their records (the app, ``JobHandle``)."""

    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[tuple[str, bool]]: ...

    def job(self, queue: str, job_id: str) -> JobRecord | None: ...

    def find_job(self, job_id: str, queues: Sequence[str] | None = None) -> JobRecord | None: ...

    def wait_done(self, queue: str, job_id: str, timeout_s: float) -> bool: ...


class Promoter(Protocol):
    """Moving due delayed jobs onto their queues (``promote_round``)."""

    def promote_due(self, queue: str, limit: int = 1000) -> tuple[int, int]: ...


class LeaseRenewer(Protocol):
    """Renewing held jobs' leases on a connection of its own (``LeaseKeeper``)."""

    def renew(self, consumer: str, deliveries: Sequence[Delivery]) -> Renewal: ...

    def drop_connections(self) -> None: ...

    def close(self) -> None: ...


class PendingFetch(Protocol):
    """A ``wait_and_fetch`` sent and not yet answered (``begin_wait_and_fetch``), whose
    calls never block except ``wait``, so a worker can wait for it on its own trio thread.
    Wait until ``fileno()`` is readable, ``poll()`` until it returns True (or, in a thread,
    ``wait()``), then take ``result()`` (None: the fetch did not run, fetch again); or
    ``abandon()`` it."""

    client_id: int | None

    def fileno(self) -> int: ...

    def poll(self) -> bool: ...

    def wait(self, timeout_s: float | None = None) -> bool: ...

    def result(self) -> list[Delivery] | None: ...

    def abandon(self) -> None: ...


class WorkerBroker(Promoter, Protocol):
    """Everything a worker does: fetch, settle, hand back, recover, renew, heartbeat."""

    def fetch(
        self, queue: str, consumer: str, count: int, limits: Sequence[LimitSpec] = ()
    ) -> list[Delivery]: ...

    def limit_overrides(self) -> dict[str, str]: ...

    def wait_ready(self, queues: Sequence[str], timeout_ms: int) -> bool: ...

    def wait_and_fetch(
        self,
        queue: str,
        consumer: str,
        count: int,
        limits: Sequence[LimitSpec] = (),
        timeout_ms: int = 1000,
    ) -> list[Delivery] | None: ...

    def begin_wait_and_fetch(
        self,
        queue: str,
        consumer: str,
        count: int,
        limits: Sequence[LimitSpec] = (),
        timeout_ms: int = 1000,
        send_if: Callable[[], bool] | None = None,
    ) -> PendingFetch | None: ...

    def interrupt_waits(self) -> None: ...

    def settle(self, settlements: Sequence[Settlement]) -> list[int]: ...

    def settle_then_fetch(
        self,
        settlements: Sequence[Settlement],
        queue: str,
        consumer: str,
        count: int,
        limits: Sequence[LimitSpec] = (),
        cap: int = 0,
    ) -> tuple[list[int], list[Delivery]]: ...

    def release(
        self, deliveries: Sequence[Delivery], *, undo_delivery: bool, max_deliveries: int = 0
    ) -> int: ...

    def recover_own(self, queue: str, consumer: str) -> list[Delivery]: ...

    def count_delivery(self, delivery: Delivery, consumer: str) -> Delivery | None: ...

    def renew(self, consumer: str, deliveries: Sequence[Delivery]) -> Renewal: ...

    def with_deadline(self, deadline_s: float) -> LeaseRenewer: ...

    def queue_drained(self, queue: str) -> bool: ...

    def heartbeat(self, worker_id: str, record: dict[str, Any], ttl_s: float) -> list[str]: ...

    def forget_worker(self, worker_id: str) -> None: ...

    def workers(self) -> list[dict[str, Any]]: ...

    def forget_consumer(self, queue: str, consumer: str) -> int: ...

    def revoked(self, deliveries: Sequence[Delivery]) -> list[Delivery]: ...


class Presence(Protocol):
    """Heartbeats of the actors that are not workers (reclaimer, beat, rate limiter)."""

    def actor_heartbeat(
        self, kind: str, actor_id: str, record: dict[str, Any], ttl_s: float
    ) -> None: ...

    def forget_actor(self, kind: str, actor_id: str) -> None: ...

    def actors(self, kind: str) -> list[dict[str, Any]]: ...


class ReclaimerBroker(Promoter, Presence, Protocol):
    """Taking back expired leases and cleaning up consumers (``Reclaimer``)."""

    def queues(self) -> list[str]: ...

    def reclaim(
        self,
        queue: str,
        consumer: str,
        *,
        min_idle_ms: int,
        max_deliveries: int,
        page: int = 100,
    ) -> ReclaimStats: ...

    def prune_consumers(self, queue: str, min_idle_ms: int) -> int: ...

    def forget_consumer(self, queue: str, consumer: str) -> int: ...


class LimiterBroker(Presence, Protocol):
    """Releasing throttled jobs and taking back dead holders' slots (``RateLimiter``)."""

    def queues(self) -> list[str]: ...

    def limit_round(self, queue: str, limits: Sequence[LimitSpec]) -> LimitRound: ...

    def limit_overrides(self) -> dict[str, str]: ...

    def limit_counters(self, queue: str) -> dict[str, int]: ...


class LimitAdmin(Protocol):
    """Changing limits while everything runs (``stem limit``)."""

    def limit_overrides(self) -> dict[str, str]: ...

    def set_limit_override(self, name: str, definition: str) -> None: ...

    def clear_limit_override(self, name: str) -> bool: ...

    def actors(self, kind: str) -> list[dict[str, Any]]: ...

    def limit_counters(self, queue: str) -> dict[str, int]: ...

    def limit_waiting(self, queue: str) -> int: ...

    def queues(self) -> list[str]: ...


class Admin(Protocol):
    """What operators look at and repair (``stem observe``, ``stem dlq``)."""

    def queues(self) -> list[str]: ...

    def queue_stats(self, queue: str) -> QueueStats: ...

    def oldest_ready_age_ms(self, queue: str) -> int | None: ...

    def expired_leases(self, queue: str, lease_ms: int, limit: int = 1000) -> int: ...

    def queue_counters(self, queue: str) -> dict[str, int]: ...

    def workers(self) -> list[dict[str, Any]]: ...

    def actors(self, kind: str) -> list[dict[str, Any]]: ...

    def limit_waiting(self, queue: str) -> int: ...

    def dead_entries(self, queue: str, count: int = 50, before: str = "+") -> list[DeadEntry]: ...

    def dead_entry(self, queue: str, entry_or_job_id: str) -> DeadEntry | None: ...

    def replay(
        self, queue: str, entry_ids: Sequence[str], envelopes: Mapping[str, str] | None = None
    ) -> list[str]: ...

    def count_envelopes(
        self, queue: str, label: Callable[[bytes], str]
    ) -> dict[tuple[str, str], int]: ...

    def purge_dead(self, queue: str) -> int: ...


class QueueControl(Protocol):
    """Pausing queues and revoking jobs (``stem queue``, ``stem job revoke``)."""

    def queues(self) -> list[str]: ...

    def queue_stats(self, queue: str) -> QueueStats: ...

    def pause(self, queue: str) -> bool: ...

    def resume(self, queue: str) -> bool: ...

    def revoke(self, queue: str, job_id: str, *, terminate: bool = False) -> tuple[int, str]: ...

    def find_job(self, job_id: str, queues: Sequence[str] | None = None) -> JobRecord | None: ...


class WorkerControl(Protocol):
    """Listing workers and sending them commands (``stem worker list|ping|stop``)."""

    def workers(self) -> list[dict[str, Any]]: ...

    def send_worker_command(self, worker_id: str, command: str) -> None: ...


class ScheduleStore(Protocol):
    """The schedule's two string maps, definitions and run records (see
    :mod:`stem.beat.store` for what the strings hold; the store does not read them)."""

    def read(self) -> ScheduleSnapshot: ...

    def definition(self, name: str) -> str | None: ...

    def state(self, name: str) -> str | None: ...

    def change_definitions(
        self, compute: Callable[[dict[str, str]], DefinitionChange]
    ) -> DefinitionChange: ...

    def record_run(
        self,
        name: str,
        run: str,
        *,
        tick_ms: int | None,
        fire_at_ms: int | None,
        keep_drifts: int,
    ) -> int | None: ...


class ScheduleHost(Protocol):
    """A broker that stores beat's schedule (``Schedules``)."""

    def schedule_store(self) -> ScheduleStore: ...


class Broker(
    Producer,
    WorkerBroker,
    ReclaimerBroker,
    LimiterBroker,
    LimitAdmin,
    Admin,
    QueueControl,
    WorkerControl,
    ScheduleHost,
    Protocol,
):
    """Every role at once: what a backend implements, plus the calls of the actors'
    start-up and shutdown and of the contract suite."""

    def ping(self) -> None: ...

    def pending_of(self, queue: str, consumer: str) -> list[Delivery]: ...

    def close(self) -> None: ...
