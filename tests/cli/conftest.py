"""CLI test fixtures: ``stem(...)`` runs the command in process on this test's Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from stem import Stem
from stem.broker import Delivery, RedisBroker, Settlement
from stem.cli import main, output
from stem.outcome import Verdict
from stem.states import JobState

Invoke = Callable[..., Result]


@pytest.fixture
def stem(redis_url: str, namespace: str) -> Invoke:
    """``stem("enqueue", "t")`` runs ``stem --redis-url <test redis> --namespace <ns> enqueue t``.

    Exceptions are not re-raised: the CLI's own edge turns them into exit codes.
    """

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        argv = ["--redis-url", redis_url, "--namespace", namespace, *args]
        return CliRunner(env=env).invoke(main, argv)

    return invoke


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI believe stdout is a terminal (tables and sentences, not plain lines)."""
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)


@pytest.fixture
def bare() -> Invoke:
    """``bare(...)`` runs ``stem ...`` with exactly the arguments given."""

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        return CliRunner(env=env).invoke(main, list(args))

    return invoke


def take(broker: RedisBroker, queue: str = "default") -> Delivery:
    """Deliver the one ready job of ``queue`` to a pretend worker."""
    [delivery] = broker.fetch(queue, "test-worker", 1)
    return delivery


def complete(broker: RedisBroker, result: Any, queue: str = "default") -> str:
    """Settle the next job of ``queue`` as succeeded with ``result``; return its id."""
    delivery = take(broker, queue)
    broker.settle([Settlement(delivery, Verdict.COMPLETE, json.dumps(result))])
    assert delivery.job_id is not None
    return delivery.job_id


def fail(broker: RedisBroker, queue: str = "default", message: str = "boom") -> str:
    """Settle the next job of ``queue`` as failed for good (buried); return its id."""
    delivery = take(broker, queue)
    error = json.dumps({"type": "ValueError", "message": message, "traceback": "Traceback: x"})
    broker.settle(
        [Settlement(delivery, Verdict.BURY, error, reason="max-retries", state=JobState.FAILED)]
    )
    assert delivery.job_id is not None
    return delivery.job_id


def keys_of(app: Stem) -> list[tuple[bytes, bytes]]:
    """The app namespace's keys with their types, sorted: what "nothing written" compares.

    Not DBSIZE: the server is shared by the tests of one xdist worker, and keys that
    earlier tests left with a TTL expire at any moment (that made these checks flaky).
    """
    client = app.broker.client
    return sorted((key, client.type(key)) for key in client.keys(f"{app.namespace}:*"))


def one_error_line(result: Result) -> str:
    """The stderr of a failed command, checked to be exactly one ``stem: error:`` line."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("stem: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]
