"""``stem enqueue TASK``: add one job from the command line.

Every option is parsed and checked before anything is sent to Redis, so bad input
writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import click

from stem.broker.keys import check_name
from stem.cli.output import echo_json
from stem.cli.root import State
from stem.errors import ConfigError


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


@click.command(
    name="enqueue",
    epilog="""Examples:

\b
  stem enqueue myapp.jobs.resize --args '[42, 800]'
  stem enqueue myapp.jobs.notify --kwargs '{"user": 7}' --queue high --priority 9
  stem enqueue myapp.jobs.report --delay 3600 --idempotency-key report-2030-01-01
  JOB=$(stem enqueue myapp.jobs.resize --args '[1, 2]') && stem result wait "$JOB" --timeout 30
""",
)
@click.argument("task")
@click.option("--args", "args_json", metavar="JSON", help="Positional arguments: a JSON array.")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments: a JSON object.")
@click.option("--queue", help="Queue (default: the task's, else the app's default queue).")
@click.option(
    "--priority", type=click.IntRange(0, 9), help="0-9, higher runs first (default: the task's)."
)
@click.option(
    "--delay", "delay_s", type=click.FloatRange(min=0), metavar="S", help="Run in S seconds."
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="A repeat with the same key (within a day) returns the first job instead.",
)
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
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Enqueue one job of TASK (a task name) and print its id.

    The task does not have to be registered in the app: a name is enough (a worker
    that does not know it dead-letters the job with reason unknown-task). With --app,
    a name the app does not know is enqueued with a warning.
    """
    if not task.strip():
        raise ConfigError("TASK must not be empty")
    args = parse_json_option("--args", args_json, list, "a JSON array")
    kwargs = parse_json_option("--kwargs", kwargs_json, dict, "a JSON object")
    if queue is not None:
        check_name("queue name", queue)
    app = state.app
    if state.app_loaded and task not in app.tasks:
        click.echo(f"stem: warning: the app has no task {task!r}; enqueuing it anyway", err=True)
    handle = app.enqueue(
        task,
        args=args or (),
        kwargs=kwargs,
        queue=queue,
        priority=priority,
        delay_s=delay_s,
        idempotency_key=idempotency_key,
    )
    if as_json:
        echo_json({"id": handle.id, "queue": handle.queue, "created": handle.created})
    else:
        click.echo(handle.id)
    if not handle.created:
        click.echo(
            f"stem: note: job {handle.id} already has idempotency key {idempotency_key!r}; "
            "not enqueued again",
            err=True,
        )
