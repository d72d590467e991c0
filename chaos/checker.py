"""The invariants every chaos scenario is judged by, from three sources of truth.

- the producer's record (:class:`~chaos.stack.Sent`): what each ``enqueue`` told its caller;
- Redis, read on the direct connection through stem's broker API: job states, DLQ entries;
- the ledger (:class:`~chaos.stack.Ledger`): every run of every job, kept outside stem.

:func:`wait_settled` waits (bounded) for every accepted job to end; :func:`judge` turns
what it found into a :class:`Verdict`: nothing lost, nothing half-written, duplicates
within the scenario's budget, one-line ``OutsideError`` s for the producer, streams
drained, no key left growing, no process left behind.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.stack import Sent, Stack
from stem.errors import OutsideError
from stem.states import TERMINAL_STATES, JobState

#: Keys in a namespace that are not per-job (streams, sets, stats, schedules...): a few.
MAX_QUEUE_KEYS = 40
#: Beyond a lease, how long entries of settled jobs may stay pending (reclaimer rounds).
STRANDED_MARGIN_S = 3.0


@dataclass
class Verdict:
    """One scenario's outcome; ``ok`` is False on any loss or broken invariant."""

    scenario: str
    jobs: int = 0
    lost: int = 0
    duplicates: int = 0
    allowed_duplicates: int = 0
    dead: int = 0
    refused: int = 0
    written_despite_error: int = 0
    recovery_s: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def accepted(stack: Stack, sent: list[Sent], verdict: Verdict) -> list[str]:
    """Ids Redis must finish: every enqueue that returned, and any written despite an error.

    Also checks each error: an ``OutsideError`` whose message is one line.
    """
    direct = stack.direct.broker
    ids = []
    for s in sent:
        if s.error is None:
            ids.append(s.job_id)
            continue
        verdict.refused += 1
        text = str(s.error)
        if not isinstance(s.error, OutsideError):
            verdict.problems.append(f"enqueue raised {type(s.error).__name__}: {text[:200]}")
        elif "\n" in text or not text:
            verdict.problems.append(f"enqueue error is not one line: {text[:200]!r}")
        if direct.job("default", s.job_id) is not None:
            verdict.written_despite_error += 1  # a lost reply: acceptable, must still finish
            ids.append(s.job_id)
    return ids


def wait_settled(stack: Stack, job_ids: list[str], timeout_s: float) -> dict[str, JobState | None]:
    """Poll the records until every job is terminal or ``timeout_s`` passes; last states."""
    broker = stack.direct.broker
    states: dict[str, JobState | None] = dict.fromkeys(job_ids)
    deadline = time.monotonic() + timeout_s
    while True:
        for jid in [j for j, st in states.items() if st not in TERMINAL_STATES]:
            record = broker.job("default", jid)
            states[jid] = record.state if record is not None else None
        if all(st in TERMINAL_STATES for st in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


def judge(
    stack: Stack,
    verdict: Verdict,
    job_ids: list[str],
    states: dict[str, JobState | None],
    keys_before: int,
) -> Verdict:
    """Fill ``verdict`` from the states, the DLQ, the ledger and the namespace's keys."""
    verdict.jobs = len(job_ids)
    lost = [j for j in job_ids if states.get(j) not in TERMINAL_STATES]
    verdict.lost = len(lost)
    if lost:
        sample = ", ".join(f"{j}={getattr(states.get(j), 'value', None)}" for j in lost[:5])
        verdict.problems.append(f"{len(lost)} job(s) not finished: {sample}")
    dead = [j for j in job_ids if states.get(j) in (JobState.DEAD, JobState.FAILED)]
    verdict.dead = len(dead)
    _check_dead_have_reasons(stack, dead, verdict)
    counts = stack.ledger.counts()
    never_ran = [j for j in job_ids if states.get(j) is JobState.SUCCEEDED and not counts[j]]
    if never_ran:
        verdict.problems.append(f"{len(never_ran)} job(s) succeeded with no run in the ledger")
    verdict.duplicates = sum(counts[j] - 1 for j in job_ids if counts[j] > 1)
    if verdict.duplicates > verdict.allowed_duplicates:
        verdict.problems.append(
            f"{verdict.duplicates} duplicate run(s), the scenario allows "
            f"{verdict.allowed_duplicates}"
        )
    _check_drained(stack, verdict, keys_before, len(job_ids))
    return verdict


def _check_dead_have_reasons(stack: Stack, dead: list[str], verdict: Verdict) -> None:
    if not dead:
        return
    entries = stack.direct.broker.dead_entries("default", count=100_000)
    reasons = {e.job_id: e.reason for e in entries}
    missing = [j for j in dead if not reasons.get(j)]
    if missing:
        verdict.problems.append(f"{len(missing)} dead job(s) without a DLQ reason")
    seen = sorted({reasons[j] for j in dead if reasons.get(j)})
    verdict.notes.append(f"dead-letter reasons: {', '.join(seen)}")


def _check_drained(stack: Stack, verdict: Verdict, keys_before: int, jobs: int) -> None:
    # Every job has settled here, but entries may still be pending for a while: a worker
    # cut off in the partition still settles its copies of jobs the others already
    # finished (its settle is on its way), and a fetch whose reply was lost left entries
    # with a worker that never saw them, which the reclaimer acks once their lease lapses.
    # An entry still pending after a lease is held by a worker that renews it without
    # settling it: stuck, a problem.
    broker = stack.direct.broker
    started = time.monotonic()
    deadline = started + stack.lease_s + STRANDED_MARGIN_S
    stats = broker.queue_stats("default")
    first_pending = stats.pending
    while stats.pending and not (stats.ready or stats.delayed) and time.monotonic() < deadline:
        time.sleep(0.1)
        stats = broker.queue_stats("default")
    if stats.ready or stats.pending or stats.delayed:
        verdict.problems.append(
            f"queue not drained: ready={stats.ready} pending={stats.pending} "
            f"delayed={stats.delayed}"
        )
    elif first_pending:
        verdict.notes.append(
            f"{first_pending} entries of settled jobs were still pending; they cleared within "
            f"{time.monotonic() - started:.1f} s (a lease: {stack.lease_s:.0f} s)"
        )
    keys = count_keys(stack)
    # Per job: a record, a done latch, maybe an idempotency key; the rest stays a handful.
    if keys - keys_before - 3 * jobs > MAX_QUEUE_KEYS:
        verdict.problems.append(f"{keys - keys_before} keys appeared for {jobs} jobs")


def count_keys(stack: Stack) -> int:
    """Keys in the stack's namespace (direct ``SCAN``, bounded by the namespace's size)."""
    client = stack.redis.client()
    return sum(1 for _ in client.scan_iter(match=f"{stack.namespace}:*", count=1000))


def check_no_actor_error(stack: Stack, verdict: Verdict) -> None:
    """No actor may have stopped with an error line (exit 3: a refusal it took for good)."""
    for actor in stack.actors:
        errors = [line for line in actor.log().splitlines() if "stem: error:" in line]
        if errors:
            verdict.problems.append(f"{actor.name} logged {len(errors)} error exit(s): {errors[0]}")


def check_processes(stack: Stack, verdict: Verdict) -> None:
    """After teardown: no process the stack started may still be alive."""
    for line in stack.leftovers:
        verdict.problems.append(f"process left behind: {line}")
