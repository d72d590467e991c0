"""Children's output is split into lines and written labelled, as text or JSON."""

from __future__ import annotations

import datetime
import io
import json
import os

import trio
import trio.testing

from supervisor.output import OutputWriter, pump_lines


async def pumped(chunks: list[bytes], max_line_bytes: int = 1024) -> list[str]:
    """The lines ``pump_lines`` emits for ``chunks`` arriving one by one, then EOF."""
    send, receive = trio.testing.memory_stream_one_way_pair()
    emitted: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump_lines, receive, emitted.append, max_line_bytes)
        for chunk in chunks:
            await send.send_all(chunk)
            await trio.testing.wait_all_tasks_blocked()
        await send.aclose()
    return emitted


def test_text_lines_are_prefixed_with_the_label_padded_to_the_longest() -> None:
    out = io.StringIO()
    writer = OutputWriter(["web.1", "worker.10"], stream=out)

    writer.line("web.1", "stdout", "GET /")
    writer.line("worker.10", "stderr", "boom")
    writer.event("worker.10 exited")

    assert out.getvalue().splitlines() == [
        "web.1      | GET /",
        "worker.10  | boom",
        "supervisor | worker.10 exited",
    ]


def test_json_lines_carry_the_log_keys_a_utc_timestamp_the_child_and_the_stream() -> None:
    out = io.StringIO()
    writer = OutputWriter(["worker.1"], json_lines=True, stream=out)

    writer.line("worker.1", "stderr", 'said "héllo"')
    writer.event("done")

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    ts = datetime.datetime.fromisoformat(first.pop("ts"))
    assert ts.utcoffset() == datetime.timedelta(0)
    assert first == {
        "level": "INFO",
        "logger": "worker.1",
        "msg": 'said "héllo"',
        "actor": "worker.1",
        "pid": os.getpid(),
        "child": "worker.1",
        "stream": "stderr",
    }
    assert (second["child"], second["stream"], second["msg"]) == ("supervisor", "event", "done")


def test_a_child_json_line_is_passed_through_with_child_and_stream_added() -> None:
    out = io.StringIO()
    writer = OutputWriter(["worker.1"], json_lines=True, stream=out)
    line = {"ts": "2026-01-01T00:00:00.000Z", "level": "WARNING", "msg": "x", "job_id": "j1"}

    writer.line("worker.1", "stderr", json.dumps(line))
    writer.line("worker.1", "stderr", "{not json")

    first, second = (json.loads(text) for text in out.getvalue().splitlines())
    assert first == {**line, "child": "worker.1", "stream": "stderr"}
    assert second["msg"] == "{not json"


def test_a_broken_destination_is_dropped_without_failing_the_supervisor() -> None:
    out = io.StringIO()
    writer = OutputWriter(["a.1"], stream=out)
    out.close()

    writer.line("a.1", "stdout", "lost")
    writer.line("a.1", "stdout", "lost too")


async def test_chunks_are_reassembled_into_lines_and_a_last_partial_line_is_kept() -> None:
    lines = await pumped([b"one\ntw", b"o\r\n", b"\nthr", b"ee"])

    assert lines == ["one", "two", "", "three"]


async def test_invalid_utf8_is_replaced_and_overlong_lines_are_cut() -> None:
    lines = await pumped([b"caf\xe9\n", b"x" * 25 + b"\n"], max_line_bytes=10)

    assert lines == ["caf\ufffd", "x" * 10, "x" * 10, "x" * 5]
