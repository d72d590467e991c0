"""``RedisBroker`` plays every role of the broker interface.

The assignments below are the check: mypy fails this file when a role's method and the
broker's drift apart (a renamed argument, a changed return type). The test only makes
sure each role names methods the broker really has at run time, too.
"""

from __future__ import annotations

import inspect

from stem.broker import (
    Admin,
    Broker,
    LeaseRenewer,
    Producer,
    Promoter,
    QueueControl,
    ReclaimerBroker,
    RedisBroker,
    ScheduleHost,
    ScheduleStore,
    WorkerBroker,
    WorkerControl,
)
from stem.broker.schedule import RedisScheduleStore

ROLES: tuple[type, ...] = (
    Producer,
    Promoter,
    LeaseRenewer,
    WorkerBroker,
    ReclaimerBroker,
    Admin,
    QueueControl,
    WorkerControl,
    ScheduleHost,
    Broker,
)


def _static_check(broker: RedisBroker) -> None:
    # Never called: mypy checks every line.
    roles: tuple[Producer, Promoter, WorkerBroker, ReclaimerBroker, Admin, ScheduleHost] = (
        broker,
        broker,
        broker,
        broker,
        broker,
        broker,
    )
    whole: Broker = broker
    renewer: LeaseRenewer = broker.with_deadline(1.0)
    store: ScheduleStore = broker.schedule_store()
    control: QueueControl = broker
    workers: WorkerControl = broker
    del roles, whole, renewer, store, control, workers


def _methods(protocol: type) -> set[str]:
    return {
        name
        for cls in protocol.__mro__
        if cls.__dict__.get("_is_protocol")
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


def test_the_redis_broker_has_every_method_of_every_role() -> None:
    missing = sorted(
        f"{role.__name__}.{name}"
        for role in ROLES
        for name in _methods(role)
        if not callable(getattr(RedisBroker, name, None))
    )
    assert missing == []


def test_the_redis_schedule_store_has_every_method_of_the_schedule_store_role() -> None:
    missing = sorted(
        name for name in _methods(ScheduleStore) if not callable(getattr(RedisScheduleStore, name))
    )
    assert missing == []


def test_the_whole_broker_role_includes_every_role_a_broker_plays_itself() -> None:
    # LeaseRenewer is what with_deadline returns, not the broker itself.
    assert set(ROLES) - {LeaseRenewer} <= set(Broker.__mro__)
