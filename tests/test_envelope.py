"""The envelope: what is encoded decodes to the same job; anything else is a PayloadError."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from stem.envelope import (
    VERSION,
    Envelope,
    decode,
    dumps,
    encode_fields,
    encode_many,
    new_job_id,
    new_job_ids,
)
from stem.errors import PayloadError, SerializationError
from stem.middleware.base import OutgoingJob


def _envelope(**changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "id": "0190a1b2c3d4e5f6a7b8c9d0e1f2",
        "task": "reports.nightly",
        "args": [1, "two", [3.5, None], {"k": True}],
        "kwargs": {"format": "pdf", "pages": [1, 2]},
        "queue": "reports",
        "priority": 7,
        "enq_ms": 1_714_564_800_123,
        "eta_ms": 1_714_564_860_000,
        "headers": {"traceparent": "00-abc-def-01"},
    }
    fields.update(changes)
    return Envelope(**fields)


def test_an_encoded_envelope_decodes_to_an_equal_envelope() -> None:
    env = _envelope()

    assert decode(env.encode()) == env
    assert decode(env.encode().encode()) == env  # bytes, as Redis returns them


def test_non_ascii_text_round_trips_unchanged() -> None:
    env = _envelope(args=["grüße", "日本語", "emoji \U0001f680"], kwargs={"ключ": "значение"})

    assert decode(env.encode()) == env


def test_encode_fields_and_envelope_encode_write_the_same_bytes() -> None:
    env = _envelope()

    text = encode_fields(
        env.id, env.task, env.args, env.kwargs, env.queue, env.priority, env.enq_ms,
        env.eta_ms, env.headers,
    )  # fmt: skip

    assert text == env.encode()
    assert json.loads(text)["v"] == VERSION


def _job(
    job_id: str,
    task: str,
    args: Any,
    queue: str = "default",
    priority: int = 0,
    eta_ms: int = 0,
    kwargs: Any = None,
    headers: Any = None,
) -> OutgoingJob:
    headers = headers or {}
    return OutgoingJob(job_id, task, args, kwargs or {}, queue, priority, eta_ms, headers)


def _single(job: OutgoingJob, enq_ms: int) -> str:
    return encode_fields(job.job_id, job.task, job.args, job.kwargs, job.queue, job.priority,
                         enq_ms, job.eta_ms, job.headers)  # fmt: skip


def test_the_bulk_path_writes_what_the_single_path_writes() -> None:
    job = _job("j1", "t.add", (1, 2), priority=3)

    [text] = encode_many([job], 1000)

    assert text == _single(job, 1000)
    assert decode(text) == Envelope("j1", "t.add", [1, 2], {}, "default", 3, 1000, 0, {})


_TEXT = ["", "a", "é", "日本語", "emoji 🎉", 'quote " and \\ backslash', "line\nbreak", "\u0000"]
_SCALARS: list[Any] = [None, True, False, 0, -1, 2**64, -(2**200), 0.0, -0.0, 1.5, 1e308,
                       5e-324, 3.141592653589793, *_TEXT]  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(5 if depth < 3 else 1)
    if kind in {0, 4}:
        return rng.choice(_SCALARS)
    if kind == 1:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 2:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {rng.choice(_TEXT): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _random_job(rng: random.Random) -> OutgoingJob:
    args = [_value(rng) for _ in range(rng.randrange(5))]
    return _job(
        job_id=rng.choice([new_job_id(), rng.choice(_TEXT) + "-id"]),
        task=rng.choice(["t.add", "módulo.tâche", "x"]),
        args=tuple(args) if rng.random() < 0.5 else args,
        queue=rng.choice(["default", "émails", "q:1"]),
        priority=rng.randrange(10),
        eta_ms=rng.choice([0, 1, 2**41, rng.randrange(2**42)]),
        kwargs={rng.choice(_TEXT): _value(rng) for _ in range(rng.randrange(3))},
        headers={rng.choice(_TEXT): rng.choice(_TEXT) for _ in range(rng.randrange(3))},
    )


def test_the_bulk_encoder_writes_exactly_what_encode_fields_writes_for_any_arguments() -> None:
    rng = random.Random(20261130)
    for _ in range(300):
        jobs = [_random_job(rng) for _ in range(rng.randrange(1, 20))]
        enq_ms = rng.choice([0, 1000, rng.randrange(2**42)])

        assert encode_many(jobs, enq_ms) == [_single(job, enq_ms) for job in jobs]


def test_the_bulk_encoder_refuses_what_encode_fields_refuses_with_the_same_message() -> None:
    bad: list[Any] = [{1, 2}, float("nan"), float("inf"), object(), b"bytes", [1, {3}]]
    for value in bad:
        for job in (_job("j", "t.x", [1, value]), _job("j", "t.x", [], kwargs={"k": value})):
            with pytest.raises(SerializationError) as single:
                _single(job, 0)
            with pytest.raises(SerializationError) as bulk:
                encode_many([_job("ok", "t.x", [1]), job], 0)
            assert str(bulk.value) == str(single.value)


def test_bulk_job_ids_are_distinct_and_shaped_like_single_ones() -> None:
    ids = new_job_ids(50)

    assert len(set(ids)) == 50
    assert {len(i) for i in ids} == {len(new_job_id())}
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_an_argument_that_is_not_json_is_refused_naming_it() -> None:
    with pytest.raises(SerializationError, match=r"positional argument 1 \(set\)"):
        encode_fields("j", "t.x", [1, {2}], {}, "q", 0, 0, 0, {})
    with pytest.raises(SerializationError, match=r"keyword argument 'when' \(object\)"):
        encode_fields("j", "t.x", [], {"when": object()}, "q", 0, 0, 0, {})
    with pytest.raises(SerializationError, match=r"positional argument 0 \(float\)"):
        encode_many([_job("j", "t.x", (float("nan"),))], 0)


def test_a_result_that_is_not_json_is_refused_naming_what_it_is() -> None:
    with pytest.raises(SerializationError, match="the result of task 't' is not JSON"):
        dumps({1, 2}, "the result of task 't'")


@pytest.mark.parametrize(
    "raw",
    [b"", b"{not json", b"\xff\xfe not utf-8", "[1, 2"],
    ids=["empty", "truncated", "not-utf8", "unclosed-list"],
)
def test_bytes_that_are_not_json_are_a_payload_error(raw: bytes | str) -> None:
    with pytest.raises(PayloadError, match="not valid JSON"):
        decode(raw)


@pytest.mark.parametrize("doc", [[1, 2], "text", 42, None], ids=["list", "str", "int", "null"])
def test_json_that_is_not_an_object_is_a_payload_error(doc: Any) -> None:
    with pytest.raises(PayloadError, match="not a JSON object"):
        decode(json.dumps(doc))


@pytest.mark.parametrize("version", [None, 0, 2, "1"], ids=["missing", "zero", "newer", "text"])
def test_an_unknown_version_is_a_payload_error_naming_it(version: Any) -> None:
    doc = json.loads(_envelope().encode())
    if version is None:
        del doc["v"]
    else:
        doc["v"] = version

    with pytest.raises(PayloadError, match=f"unsupported envelope version {version!r}"):
        decode(json.dumps(doc))


def test_a_missing_field_is_a_payload_error_naming_it() -> None:
    doc = json.loads(_envelope().encode())
    del doc["queue"]

    with pytest.raises(PayloadError, match="envelope lacks field 'queue'"):
        decode(json.dumps(doc))


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", 7), ("args", {"a": 1}), ("kwargs", []), ("priority", "9"), ("priority", True)],
)
def test_a_field_of_the_wrong_type_is_a_payload_error_naming_it(field: str, value: Any) -> None:
    doc = json.loads(_envelope().encode())
    doc[field] = value

    with pytest.raises(PayloadError, match=f"envelope field {field!r} should be"):
        decode(json.dumps(doc))


def test_a_task_refuses_arguments_of_a_bad_shape_every_time_and_accepts_good_ones() -> None:
    from stem import Stem

    app = Stem()

    @app.task
    def add(a: int, b: int = 0) -> int:
        return a + b

    for _ in range(3):  # the verdict is remembered per shape: it must stay the same
        add.bind_check([1], {})
        add.bind_check([1], {"b": 2})
        with pytest.raises(TypeError, match="missing a required argument"):
            add.bind_check([], {})
        with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
            add.bind_check([1], {"c": 2})
        with pytest.raises(TypeError, match="too many positional arguments"):
            add.bind_check([1, 2, 3], {})
