"""app.enqueue checks its options before writing: a bad one is a ConfigError and no job."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from stem import Stem
from stem.errors import ConfigError, SerializationError


def _nothing_written(app: Stem) -> bool:
    return app.broker.queues() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": 10}, "priority must be 0-9, got 10"),
        ({"priority": -1}, "priority must be 0-9, got -1"),
        ({"delay_s": -0.5}, r"delay_s must be a number from 0 to \d+ \(ten years\), got -0.5"),
        (
            {"delay_s": 5, "eta": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)},
            "give delay_s or eta, not both",
        ),
        ({"eta": dt.datetime(2030, 1, 1)}, "eta must be a timezone-aware datetime"),
        ({"idempotency_key": "two\nlines"}, "idempotency_key must be 1-512 characters"),
        ({"idempotency_key": "carriage\rreturn"}, "idempotency_key must be 1-512 characters"),
        ({"idempotency_key": ""}, "idempotency_key must be 1-512 characters"),
        ({"idempotency_key": "k" * 513}, "idempotency_key must be 1-512 characters"),
        ({"job_id": "has space"}, "invalid job id 'has space'"),
        ({"job_id": "{tag}"}, "invalid job id"),
        ({"queue": "a b"}, "invalid queue name 'a b'"),
        ({"queue": "{emails}"}, "invalid queue name"),
    ],
    ids=[
        "priority-too-high",
        "priority-negative",
        "negative-delay",
        "delay-and-eta",
        "naive-eta",
        "key-with-newline",
        "key-with-carriage-return",
        "empty-key",
        "key-too-long",
        "job-id-with-space",
        "job-id-with-braces",
        "queue-with-space",
        "queue-with-braces",
    ],
)
def test_a_bad_enqueue_option_is_a_config_error_and_nothing_is_written(
    app: Stem, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        app.enqueue("t.any", [1], **options)

    assert _nothing_written(app)


def test_an_argument_that_is_not_json_is_refused_before_anything_is_written(app: Stem) -> None:
    with pytest.raises(SerializationError, match=r"keyword argument 'at' \(datetime\)"):
        app.enqueue("t.any", [], {"at": dt.datetime(2030, 1, 1)})

    assert _nothing_written(app)


@pytest.mark.parametrize(
    "options",
    [
        {"priority": 0},
        {"priority": 9},
        {"delay_s": 0},
        {"eta": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)},
        {"idempotency_key": "k" * 512},
        {"idempotency_key": "spaces and ünicode are fine"},
        {"job_id": "my-job:1.2_3"},
        {"queue": "emails.high-2"},
    ],
    ids=[
        "lowest-priority",
        "highest-priority",
        "zero-delay",
        "aware-eta",
        "longest-key",
        "key-with-spaces",
        "chosen-id",
        "dotted-queue",
    ],
)
def test_options_at_the_edge_of_the_rules_are_accepted(app: Stem, options: dict[str, Any]) -> None:
    handle = app.enqueue("t.any", [1], **options)

    assert handle.created
    assert app.broker.queues() == [handle.queue]
