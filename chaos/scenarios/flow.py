"""Building blocks of a scenario: faults as context managers, probes, the final judgement."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from toxiproxy.proxy import Proxy

from chaos.checker import Verdict, accepted, check_no_actor_error, count_keys, judge, wait_settled
from chaos.stack import Actor, Sent, Stack, enqueue_one
from stem.states import JobState

#: How long jobs may take to finish after the fault ends (and the producer stopped).
SETTLE_TIMEOUT_S = 60.0
#: How long a probe job may take to run after the fault ends.
RECOVERY_TIMEOUT_S = 45.0
#: Probes jump the backlog the fault left (workers read the highest priority first), so
#: recovery measures when the actors work again, not how long the queue is.
PROBE_PRIORITY = 9


@contextlib.contextmanager
def toxic(
    proxy: Proxy, type_: str, attributes: dict[str, Any], streams: Sequence[str] = ("downstream",)
) -> Iterator[None]:
    """Add a toxic of ``type_`` on each stream of ``proxy``; remove it on exit."""
    names = []
    try:
        for stream in streams:
            name = f"{type_}_{stream}"
            proxy.add_toxic(name=name, type=type_, stream=stream, attributes=attributes)
            names.append(name)
        yield
    finally:
        for name in names:
            proxy.destroy_toxic(name)


def blackhole(proxy: Proxy) -> contextlib.AbstractContextManager[None]:
    """A half-open partition: connections stay up, no byte passes (``timeout`` 0)."""
    return toxic(proxy, "timeout", {"timeout": 0}, ("upstream", "downstream"))


def hold(seconds: float) -> None:
    """Keep a fault on for ``seconds`` (the fault's length, not a synchronisation)."""
    time.sleep(seconds)


def wait_running(stack: Stack, runs: int, timeout_s: float = 30.0) -> None:
    """Wait until the ledger shows ``runs`` runs (the actors are up and draining)."""
    deadline = time.monotonic() + timeout_s
    while len(stack.ledger.runs()) < runs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {runs} runs within {timeout_s:.0f} s: actors not draining")
        time.sleep(0.05)


def probe(stack: Stack, proxy: Proxy, verdict: Verdict, fault_end: float, count: int) -> list[str]:
    """Enqueue ``count`` probe jobs right after the fault; recovery = until all succeeded.

    Probes have the top priority, so they do not wait behind the backlog.

    Each probe's enqueue is repeated with its id until it is accepted (bounded), since
    a connection may still be healing; its ids join the jobs the checker expects.
    """
    app = stack.app(proxy)
    ids: list[str] = []
    deadline = fault_end + RECOVERY_TIMEOUT_S
    for _ in range(count):
        sent = enqueue_one(app, priority=PROBE_PRIORITY)
        while sent.error is not None and time.monotonic() < deadline:
            time.sleep(0.1)
            sent = enqueue_one(app, priority=PROBE_PRIORITY)
        ids.append(sent.job_id)
    broker = stack.direct.broker
    while time.monotonic() < deadline:
        records = [broker.job("default", j) for j in ids]
        if all(r is not None and r.state is JobState.SUCCEEDED for r in records):
            verdict.recovery_s = round(time.monotonic() - fault_end, 2)
            return ids
        time.sleep(0.05)
    verdict.problems.append(
        f"no recovery: probes not done {RECOVERY_TIMEOUT_S:.0f} s after the fault"
    )
    return ids


def finish(
    stack: Stack,
    verdict: Verdict,
    sent: list[Sent],
    keys_before: int,
    extra_ids: Sequence[str] = (),
    alive: Sequence[Actor] = (),
) -> None:
    """Wait for every accepted job, then judge; ``alive`` actors must not have exited."""
    ids = accepted(stack, sent, verdict) + list(extra_ids)
    states = wait_settled(stack, ids, SETTLE_TIMEOUT_S)
    judge(stack, verdict, ids, states, keys_before)
    check_no_actor_error(stack, verdict)
    for actor in alive:
        if not actor.alive():
            verdict.problems.append(f"{actor.name} exited ({actor.proc and actor.proc.poll()})")


def start_keys(stack: Stack) -> int:
    return count_keys(stack)
