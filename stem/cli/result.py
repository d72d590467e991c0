"""``stem result get|wait``: a job's state and result, now or when it settles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from stem.broker import json_or_text
from stem.cli.output import echo_json, emit_record, iso_ms, one_line
from stem.cli.root import EXIT_FAILED, State
from stem.errors import JobFailed, JobNotFound, JobRevoked
from stem.states import DEAD_LETTER_STATES, JobState

if TYPE_CHECKING:
    from stem.broker import JobRecord
    from stem.handle import JobHandle


def record_doc(record: JobRecord) -> dict[str, Any]:
    """What ``--json`` shows about a job."""
    envelope = json_or_text(record.envelope)
    envelope = envelope if isinstance(envelope, dict) else {}
    return {
        "id": record.id,
        "queue": record.queue,
        "state": record.state.value,
        "task": envelope.get("task") or record.task,
        "args": envelope.get("args"),
        "kwargs": envelope.get("kwargs"),
        "attempt": record.attempt,
        "deliveries": record.deliveries,
        "result": json_or_text(record.result),
        "error": json_or_text(record.error),
        "reason": record.reason,
        "enqueued_ms": record.enq_ms,
        "eta_ms": record.eta_ms,
        "started_ms": record.start_ms,
        "ended_ms": record.end_ms,
        "worker": record.worker,
    }


def error_text(error: Any, limit: int | None = 200) -> str:
    """``Type: message`` of a stored error, on one line, cut at a word past ``limit``."""
    if not isinstance(error, dict):
        return one_line(str(error), limit)
    text = f"{error.get('type', 'Error')}: {error.get('message', '')}".rstrip(": ")
    return one_line(text, limit)


def record_fields(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of ``stem result get`` without ``--json``, id first."""
    fields = [
        ("id", doc["id"]),
        ("queue", doc["queue"]),
        ("state", doc["state"]),
        ("reason", doc["reason"] or "-"),
        ("task", doc["task"] or "-"),
        ("attempt", str(doc["attempt"])),
        ("deliveries", str(doc["deliveries"])),
        ("enqueued", iso_ms(doc["enqueued_ms"])),
        ("eta", iso_ms(doc["eta_ms"])),
        ("started", iso_ms(doc["started_ms"])),
        ("ended", iso_ms(doc["ended_ms"])),
        ("worker", doc["worker"] or "-"),
    ]
    if doc["state"] == "succeeded":
        fields.append(("result", json.dumps(doc["result"])))
    if doc["error"] is not None:
        fields.append(("error", error_text(doc["error"], limit=None)))
    return fields


#: How long ``stem result wait`` and ``stem enqueue --wait`` wait without ``--timeout``.
DEFAULT_WAIT_TIMEOUT_S = 60.0

timeout_option = click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=DEFAULT_WAIT_TIMEOUT_S,
    show_default=True,
    metavar="S",
    help="Give up after S seconds (exit code 5).",
)


def _handle(state: State, job_id: str, queue: str | None) -> JobHandle:
    return state.app.job(job_id, queue)


def _not_found(job_id: str, queue: str | None) -> JobNotFound:
    where = f"in queue {queue!r}" if queue else "in any queue"
    return JobNotFound(f"no job {job_id} {where} (never enqueued, or expired)", job_id=job_id)


@click.group(
    name="result",
    epilog="""Examples:

\b
  stem result get 01b8dac5b4009f3c2a7e5d1b8c460e27
  stem result wait 01b8dac5b4009f3c2a7e5d1b8c460e27 --timeout 30 --json
""",
)
def result() -> None:
    """Look at a job's state and result, or wait for it."""


@result.command(
    name="get",
    epilog="""Examples:

\b
  stem result get 01b8dac5b4009f3c2a7e5d1b8c460e27
  stem result get 01b8dac5b4009f3c2a7e5d1b8c460e27 --queue high --json | jq .state

Exit code 0 when the job succeeded or is still pending, 1 when it failed or is dead,
4 when there is no such job.
""",
)
@click.argument("job_id", metavar="ID")
@click.option("--queue", help="The job's queue.", show_default="search every known queue")
@click.option("--json", "as_json", is_flag=True, help="Print the record as a JSON object.")
@click.pass_obj
def get(state: State, job_id: str, queue: str | None, as_json: bool) -> None:
    """Show job ID's state, and its result or error, without waiting."""
    record = _handle(state, job_id, queue).info()
    if record is None:
        raise _not_found(job_id, queue)
    doc = record_doc(record)
    emit_record(doc, record_fields(doc), as_json=as_json)
    if record.state in DEAD_LETTER_STATES or record.state is JobState.REVOKED:
        raise click.exceptions.Exit(EXIT_FAILED)


@result.command(
    name="wait",
    epilog="""Examples:

\b
  stem result wait 01b8dac5b4009f3c2a7e5d1b8c460e27 --timeout 30
  stem result wait "$(stem enqueue myapp.jobs.add --args '[1, 2]')" --timeout 10

Prints the result as JSON. Exit code 1 when the job failed or was revoked (its
error on stderr), 4 when there is no such job, 5 on timeout.
""",
)
@click.argument("job_id", metavar="ID")
@click.option("--queue", help="The job's queue.", show_default="search every known queue")
@timeout_option
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"id", "state", "result"} (or "error").'
)
@click.pass_obj
def wait(state: State, job_id: str, queue: str | None, timeout_s: float, as_json: bool) -> None:
    """Wait until job ID settles, then print its result.

    Wakes as soon as the job settles (no polling).
    """
    wait_and_print(_handle(state, job_id, queue), queue, timeout_s, as_json=as_json)


def wait_and_print(
    handle: JobHandle, queue: str | None, timeout_s: float, *, as_json: bool
) -> None:
    """Wait for ``handle``'s result and print it (``stem result wait``, ``enqueue --wait``).

    Raises what ``stem result wait`` exits with: ``JobFailed`` or ``JobRevoked`` (1),
    ``JobNotFound`` (4), ``ResultTimeout`` (5).
    """
    try:
        value = handle.result(timeout_s=timeout_s)
    except JobNotFound:
        raise _not_found(handle.id, queue) from None
    except JobFailed as exc:
        if as_json:
            record = handle.info()
            failed = record.state.value if record is not None else "failed"
            echo_json({"id": handle.id, "state": failed, "error": exc.error})
        raise
    except JobRevoked as exc:
        if as_json:
            echo_json({"id": handle.id, "state": JobState.REVOKED.value, "error": str(exc)})
        raise
    if as_json:
        echo_json({"id": handle.id, "state": "succeeded", "result": value})
    else:
        click.echo(json.dumps(value))
