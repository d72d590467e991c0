"""``stem queue list|pause|resume|drain``: stop and start the work on a queue.

A paused queue keeps accepting jobs, but no worker starts a new one of it; jobs that run
(or that a worker had already prefetched) finish. The pause lives in Redis, so every
worker obeys it within a second, including workers started later, until ``resume``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import click

from stem.broker.keys import check_name
from stem.cli import output
from stem.cli.observe import QUEUE_COLUMNS
from stem.cli.output import emit, emit_done, examples
from stem.cli.root import EXIT_TIMEOUT, State

if TYPE_CHECKING:
    from stem.broker import QueueControl, QueueStats

#: How often ``drain`` looks at the queue.
DRAIN_POLL_S = 0.5


def _control(state: State) -> QueueControl:
    return state.app.broker


@click.group(
    name="queue",
    epilog=examples(
        "stem queue list",
        "stem queue pause emails",
        "stem queue resume emails",
        "stem queue drain emails --timeout 300",
    ),
)
def queue() -> None:
    """Pause, resume and drain queues."""


@queue.command(
    name="list",
    epilog=examples("stem queue list", "stem queue list --json | jq '.[] | select(.paused)'"),
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def list_queues(state: State, as_json: bool) -> None:
    """Every known queue: paused or not, and its depth."""
    broker = _control(state)
    docs = [dataclasses.asdict(broker.queue_stats(q)) for q in broker.queues()]
    emit(docs, QUEUE_COLUMNS, as_json=as_json, empty="no queues yet")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _flip(state: State, name: str, *, pause: bool, as_json: bool) -> None:
    name = check_name("queue name", name)
    broker = _control(state)
    changed = broker.pause(name) if pause else broker.resume(name)
    word = "paused" if pause else "resumed"
    sentence = f"queue {name} {word}" if changed else f"queue {name} was already {word}"
    doc: dict[str, Any] = {"queue": name, "paused": pause, "changed": changed}
    fields = [("queue", name), ("paused", _yes(pause)), ("changed", _yes(changed))]
    emit_done(sentence, doc, fields, as_json=as_json)


@queue.command(
    name="pause",
    epilog=examples("stem queue pause emails"),
)
@click.argument("name", metavar="QUEUE")
@click.option("--json", "as_json", is_flag=True, help='Print {"queue", "paused", "changed"}.')
@click.pass_obj
def pause(state: State, name: str, as_json: bool) -> None:
    """Stop workers from starting jobs of QUEUE (it still accepts jobs).

    Every worker obeys within a second; running jobs finish.
    """
    _flip(state, name, pause=True, as_json=as_json)


@queue.command(
    name="resume",
    epilog=examples("stem queue resume emails"),
)
@click.argument("name", metavar="QUEUE")
@click.option("--json", "as_json", is_flag=True, help='Print {"queue", "paused", "changed"}.')
@click.pass_obj
def resume(state: State, name: str, as_json: bool) -> None:
    """Let workers start jobs of QUEUE again (within a second)."""
    _flip(state, name, pause=False, as_json=as_json)


def _left(stats: QueueStats) -> int:
    return stats.ready + stats.delayed + stats.pending


@queue.command(
    name="drain",
    epilog=examples(
        "stem queue drain emails",
        "stem queue drain emails --timeout 600 && ./deploy.sh   # stop producers first",
    )
    + "\n\nExit code 5 when --timeout passes first.",
)
@click.argument("name", metavar="QUEUE")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=None,
    metavar="S",
    help="Give up after S seconds (exit code 5).",
    show_default="wait as long as it takes",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"queue", "drained", "waited_s"}.')
@click.pass_obj
def drain(state: State, name: str, timeout_s: float | None, as_json: bool) -> None:
    """Wait until nothing of QUEUE is ready, delayed or running.

    Shows a progress line on a terminal. It neither pauses nor resumes the queue: on a
    paused queue with jobs waiting it waits until someone resumes it (or --timeout).
    """
    name = check_name("queue name", name)
    broker = _control(state)
    start = time.monotonic()
    tty = output.stdout_is_tty()
    while _left(stats := broker.queue_stats(name)) > 0:
        waited = time.monotonic() - start
        if tty:
            line = f"draining {name}: ready={stats.ready} delayed={stats.delayed} "
            click.echo(f"\r{line}running={stats.pending} ({output.span(waited)})", nl=False)
        if timeout_s is not None and waited >= timeout_s:
            if tty:
                click.echo()
            left = _left(stats)
            click.echo(
                f"stem: error: queue {name} still has {left} job(s) after {timeout_s}s", err=True
            )
            raise click.exceptions.Exit(EXIT_TIMEOUT)
        time.sleep(DRAIN_POLL_S)
    if tty:
        click.echo()
    waited_s = round(time.monotonic() - start, 3)
    doc = {"queue": name, "drained": True, "waited_s": waited_s}
    fields = [("queue", name), ("drained", "yes"), ("waited_s", str(waited_s))]
    emit_done(f"queue {name} is drained", doc, fields, as_json=as_json)
