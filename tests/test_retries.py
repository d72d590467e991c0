"""RetryPolicy's backoff and the Retries middleware's retry-or-bury decision (pure)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from stem.context import JobContext
from stem.errors import (
    ConfigError,
    HardTimeLimitExceeded,
    RemoteTaskError,
    Retry,
    SerializationError,
    describe,
    type_names,
)
from stem.middleware.retries import Retries
from stem.outcome import Outcome, Verdict
from stem.states import DeadReason
from stem.task import RetryPolicy


class _MaxRandom(random.Random):
    """Always draws the top of the range: the backoff ceiling becomes visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _ctx(policy: RetryPolicy, attempt: int) -> JobContext:
    # Retries reads only the task's policy from the job's state.
    task = SimpleNamespace(name="unit.flaky", retry=policy)
    return JobContext(
        job_id="j1", task=task.name, queue="default", attempt=attempt, deliveries=1,
        args=[], kwargs={}, state={"task": task},
    )  # fmt: skip


def _decide(policy: RetryPolicy, attempt: int, error: BaseException) -> Outcome:
    outcome = Outcome.failed(error)
    Retries().after_process(_ctx(policy, attempt), outcome)
    return outcome


def test_the_backoff_ceiling_doubles_with_each_attempt_until_the_cap() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_cap_s=10.0, rng=_MaxRandom())

    delays = [policy.delay_s(attempt) for attempt in range(6)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_full_jitter_keeps_every_delay_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_cap_s=30.0, rng=random.Random(7))

    for attempt in range(10):
        ceiling = min(30.0, 0.5 * 2**attempt)
        delays = [policy.delay_s(attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jittered across the range, not stuck at 0


def test_a_huge_attempt_number_stays_at_the_cap_instead_of_overflowing() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_cap_s=60.0, rng=_MaxRandom())

    assert policy.delay_s(10_000) == 60.0


def test_a_retry_that_names_its_delay_gets_exactly_that_delay() -> None:
    policy = RetryPolicy(rng=_MaxRandom())

    assert policy.delay_s(3, Retry(delay_s=12.5)) == 12.5
    assert policy.delay_s(3, Retry(delay_s=-4)) == 0.0
    assert policy.delay_s(0, Retry()) == 1.0  # no delay given: the policy's backoff


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"backoff_base_s": -1.0}, "must be >= 0"),
        ({"backoff_cap_s": -0.5}, "must be >= 0"),
    ],
)
def test_a_policy_with_a_negative_setting_is_a_config_error(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        RetryPolicy(**options)


def test_retryable_follows_retry_on_and_dont_retry_on() -> None:
    policy = RetryPolicy(retry_on=(OSError,), dont_retry_on=(FileNotFoundError,))

    assert policy.retryable(ConnectionError())
    assert not policy.retryable(FileNotFoundError())
    assert not policy.retryable(ValueError())
    assert policy.retryable(Retry())  # a requested retry always is
    assert not RetryPolicy().retryable(SerializationError("never fixes itself"))


def test_a_failed_attempt_with_retries_left_becomes_a_retry_after_the_backoff() -> None:
    policy = RetryPolicy(max_retries=3, backoff_base_s=2.0, rng=_MaxRandom())

    outcome = _decide(policy, attempt=1, error=ValueError("boom"))

    assert (outcome.verdict, outcome.delay_s) == (Verdict.RETRY, 4.0)


def test_the_attempt_that_spends_max_retries_is_buried_with_reason_max_retries() -> None:
    policy = RetryPolicy(max_retries=3)

    verdicts = [_decide(policy, attempt, ValueError("boom")).verdict for attempt in range(5)]
    last = _decide(policy, 3, ValueError("boom"))

    assert verdicts == [Verdict.RETRY] * 3 + [Verdict.BURY] * 2
    assert last.reason == DeadReason.MAX_RETRIES.value


def test_max_retries_zero_buries_the_first_failure() -> None:
    outcome = _decide(RetryPolicy(max_retries=0), 0, ValueError("boom"))

    assert (outcome.verdict, outcome.reason) == (Verdict.BURY, DeadReason.MAX_RETRIES.value)


def test_an_error_the_policy_does_not_retry_is_buried_as_not_retryable() -> None:
    policy = RetryPolicy(dont_retry_on=(KeyError,))

    outcome = _decide(policy, 0, KeyError("k"))

    assert (outcome.verdict, outcome.reason) == (Verdict.BURY, DeadReason.NOT_RETRYABLE.value)


def test_raising_retry_with_a_delay_retries_after_that_delay() -> None:
    outcome = _decide(RetryPolicy(rng=_MaxRandom()), 0, Retry(delay_s=42.0))

    assert (outcome.verdict, outcome.delay_s) == (Verdict.RETRY, 42.0)


def test_a_hard_time_limit_is_buried_unless_the_policy_retries_on_it() -> None:
    killed = HardTimeLimitExceeded("killed")

    default = _decide(RetryPolicy(), 0, killed)
    opted_in = _decide(RetryPolicy(retry_on=(HardTimeLimitExceeded,)), 0, killed)

    assert (default.verdict, default.reason) == (Verdict.BURY, DeadReason.HARD_TIME_LIMIT.value)
    assert opted_in.verdict is Verdict.RETRY


class _Flaky(ConnectionError):
    """An app-defined error type, raised in a pool child."""


def _remote(exc: BaseException, retry_delay_s: float | None = None) -> RemoteTaskError:
    # What the pool child sends for ``exc``: its record and its type names, nothing decided.
    return RemoteTaskError(describe(exc), mro=type_names(exc), retry_delay_s=retry_delay_s)


def test_an_error_from_a_pool_child_is_judged_by_its_type_names_like_a_local_one() -> None:
    policy = RetryPolicy(retry_on=(OSError,), dont_retry_on=(_Flaky,))
    errors = [ValueError("v"), OSError("o"), _Flaky("f"), Retry(), SerializationError("s")]

    remote = [_decide(policy, 0, _remote(e)).verdict for e in errors]
    local = [_decide(policy, 0, e).verdict for e in errors]

    expected = [Verdict.BURY, Verdict.RETRY, Verdict.BURY, Verdict.RETRY, Verdict.BURY]
    assert remote == local == expected


def test_a_retry_raised_in_a_pool_child_waits_the_delay_it_asked_for() -> None:
    outcome = _decide(RetryPolicy(rng=_MaxRandom()), 0, _remote(Retry(9.0), retry_delay_s=9.0))

    assert (outcome.verdict, outcome.delay_s) == (Verdict.RETRY, 9.0)


def test_a_successful_or_already_decided_outcome_is_left_alone() -> None:
    for verdict in (Verdict.COMPLETE, Verdict.RETRY, Verdict.BURY):
        error = ValueError("x") if verdict is not Verdict.COMPLETE else None
        outcome = Outcome(verdict, error=error)
        Retries().after_process(_ctx(RetryPolicy(), 0), outcome)
        assert outcome.verdict is verdict
