"""``stem enqueue TASK``: add one job from the command line.

Every option is parsed and checked before anything is sent to Redis, so bad input
writes nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Sequence
from typing import Any

import click

from stem.broker.keys import check_name
from stem.cli.output import echo_json
from stem.cli.result import timeout_option, wait_and_print
from stem.cli.root import State
from stem.errors import ConfigError, UnknownTaskError


def parse_json_option(option: str, raw: str | None, kind: type, what: str) -> Any:
    """``raw`` decoded as JSON of type ``kind``; ``None`` when the option was not given."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise ConfigError(f"{option} must be {what}, got {type(value).__name__}: {raw.strip()}")
    return value


def parse_eta(raw: str | None) -> dt.datetime | None:
    """``--eta`` as an aware datetime: ISO 8601 with a UTC offset (``Z`` or ``+02:00``)."""
    if raw is None:
        return None
    try:
        eta = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigError(
            f"--eta {raw!r} is not an ISO 8601 time, e.g. 2030-01-01T09:00:00+02:00"
        ) from None
    if eta.tzinfo is None:
        raise ConfigError(f"--eta {raw!r} needs a UTC offset, e.g. {raw.strip()}Z or +02:00")
    return eta


def parse_headers(raw: Sequence[str]) -> dict[str, str] | None:
    """``--header K=V`` options as a dict (a later K wins); None when none were given."""
    headers: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--header {item!r}: expected KEY=VALUE")
        headers[key.strip()] = value
    return headers or None


def check_task_name(state: State, task: str, *, force: bool) -> None:
    """With ``--app``, refuse a task name the app does not know, with the closest names."""
    if not state.app_loaded or force:
        return
    known = state.app.tasks
    if task in known:
        return
    close = difflib.get_close_matches(task, list(known), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownTaskError(
        f"the app has no task {task!r}{hint} (--force enqueues it anyway; a worker "
        "without it dead-letters the job as unknown-task)"
    )


@click.command(
    name="enqueue",
    epilog="""Examples:

\b
  stem enqueue myapp.jobs.resize --args '[42, 800]'
  stem enqueue myapp.jobs.notify --kwargs '{"user": 7}' -Q high --priority 9
  stem enqueue myapp.jobs.report --delay 3600 --idempotency-key report-2030-01-01
  stem enqueue myapp.jobs.report --eta 2030-01-01T09:00:00+02:00 --header tenant=acme
  stem enqueue myapp.jobs.add --args '[1, 2]' --wait --timeout 30   # prints 3
  stem enqueue myapp.jobs.ping --keep-result 0   # nothing stays in Redis once it ran

Exit codes with --wait are those of `stem result wait`: 1 when the job failed, 5 on
timeout.
""",
)
@click.argument("task")
@click.option("--args", "args_json", metavar="JSON", help="Positional arguments: a JSON array.")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments: a JSON object.")
@click.option("--queue", help="Queue.", show_default="the task's, else the app's default queue")
@click.option(
    "--priority", type=click.IntRange(0, 9), help="Higher runs first.", show_default="the task's"
)
@click.option(
    "--delay", "delay_s", type=click.FloatRange(min=0), metavar="S", help="Run in S seconds."
)
@click.option(
    "--eta",
    metavar="TIME",
    help="Run at TIME: ISO 8601 with a UTC offset, e.g. 2030-01-01T09:00:00Z.",
)
@click.option("--job-id", metavar="ID", help="Pick the job id (a repeat of a live id is a no-op).")
@click.option(
    "--header",
    "header_items",
    metavar="K=V",
    multiple=True,
    help="A job header (repeatable); a job's handlers see them in current_job().headers.",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="A repeat with the same key (within a day) returns the first job instead.",
)
@click.option(
    "--keep-result",
    "keep_result_s",
    type=click.IntRange(min=0),
    metavar="S",
    help="Keep the settled job's record S seconds (0: nothing once it ran).",
    show_default="the task's, else the app's result_ttl_s (1 h)",
)
@click.option(
    "--force", is_flag=True, help="With --app: enqueue a task name the app does not know."
)
@click.option("--wait", is_flag=True, help="Wait for the job and print its result, not its id.")
@timeout_option
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "queue", "created"}.')
@click.pass_obj
def enqueue(
    state: State,
    task: str,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    priority: int | None,
    delay_s: float | None,
    eta: str | None,
    job_id: str | None,
    header_items: tuple[str, ...],
    idempotency_key: str | None,
    keep_result_s: int | None,
    force: bool,
    wait: bool,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Enqueue one job of TASK (a task name) and print its id.

    Without --app any name is accepted (a worker that does not know it dead-letters the
    job with reason unknown-task). With --app, a name the app does not know is refused
    (exit 2, with the closest names) unless --force is given.
    """
    if not task.strip():
        raise ConfigError("TASK must not be empty")
    args = parse_json_option("--args", args_json, list, "a JSON array")
    kwargs = parse_json_option("--kwargs", kwargs_json, dict, "a JSON object")
    when = parse_eta(eta)
    if when is not None and delay_s is not None:
        raise ConfigError("give --delay or --eta, not both")
    headers = parse_headers(header_items)
    if queue is not None:
        check_name("queue name", queue)
    check_task_name(state, task, force=force)
    handle = state.app.enqueue(
        task,
        args=args or (),
        kwargs=kwargs,
        queue=queue,
        priority=priority,
        delay_s=delay_s,
        eta=when,
        idempotency_key=idempotency_key,
        job_id=job_id,
        headers=headers,
        keep_result_s=keep_result_s,
    )
    if not handle.created:
        click.echo(
            f"stem: note: job {handle.id} already exists (same "
            f"{'idempotency key' if idempotency_key else 'job id'}); not enqueued again",
            err=True,
        )
    if wait:
        wait_and_print(handle, handle.queue, timeout_s, as_json=as_json)
    elif as_json:
        echo_json({"id": handle.id, "queue": handle.queue, "created": handle.created})
    else:
        click.echo(handle.id)
