"""The envelope: what is encoded decodes to the same job; anything else is a PayloadError."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stem.envelope import VERSION, Envelope, decode, dumps, encode_fields, encode_many
from stem.errors import PayloadError, SerializationError


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


def test_the_bulk_path_writes_what_the_single_path_writes() -> None:
    [(job_id, text)] = encode_many("t.add", "default", 3, 1000, 0, [(1, 2)])

    single = encode_fields(job_id, "t.add", [1, 2], {}, "default", 3, 1000, 0, {})

    assert text == single
    assert decode(text) == Envelope(job_id, "t.add", [1, 2], {}, "default", 3, 1000, 0, {})


def test_bulk_encoding_gives_each_job_its_own_id() -> None:
    jobs = encode_many("t.add", "default", 0, 1000, 0, [(i,) for i in range(50)])

    assert len({job_id for job_id, _ in jobs}) == 50
    assert [decode(text).args for _, text in jobs] == [[i] for i in range(50)]


def test_an_argument_that_is_not_json_is_refused_naming_it() -> None:
    with pytest.raises(SerializationError, match=r"positional argument 1 \(set\)"):
        encode_fields("j", "t.x", [1, {2}], {}, "q", 0, 0, 0, {})
    with pytest.raises(SerializationError, match=r"keyword argument 'when' \(object\)"):
        encode_fields("j", "t.x", [], {"when": object()}, "q", 0, 0, 0, {})
    with pytest.raises(SerializationError, match=r"positional argument 0 \(float\)"):
        encode_many("t.x", "q", 0, 0, 0, [(float("nan"),)])


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
