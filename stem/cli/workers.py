"""``stem worker list|ping|stop``: look at running workers and talk to them.

Commands travel over a control list per worker in Redis, which each worker reads with its
heartbeat (every 2 s): ``stop`` is the same graceful stop as SIGTERM, ``ping`` makes the
worker beat again at once with the ping's nonce in its record.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import click

from stem.cli.observe import WORKER_COLUMNS, worker_docs
from stem.cli.output import emit, emit_done, examples
from stem.cli.root import EXIT_TIMEOUT, State
from stem.errors import NotFound

if TYPE_CHECKING:
    from stem.broker import WorkerControl

#: Must match ``stem.worker.core`` (the CLI does not import the worker).
STOP = "stop"
PING = "ping:"
#: How often ``ping`` looks for the answer.
PING_POLL_S = 0.05


def _control(state: State) -> WorkerControl:
    return state.app.broker


def _live(broker: WorkerControl, name: str) -> dict[str, Any]:
    for record in broker.workers():
        if record.get("id") == name:
            return record
    raise NotFound(f"no live worker named {name!r} (see `stem worker list`)")


@click.command(name="list", epilog=examples("stem worker list", "stem worker list --json"))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of heartbeat records.")
@click.pass_obj
def list_workers(state: State, as_json: bool) -> None:
    """Live workers (as `stem observe workers`)."""
    emit(worker_docs(state.app.broker), WORKER_COLUMNS, as_json=as_json, empty="no live workers")


@click.command(
    name="ping",
    epilog=examples("stem worker ping host1/worker.1 --timeout 5")
    + "\n\nExit code 4 when no live worker has that name, 5 when it does not answer in time.",
)
@click.argument("name", metavar="NAME")
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0), default=10.0, show_default=True,
    metavar="S", help="Give up after S seconds (exit code 5).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "latency_ms"}.')
@click.pass_obj
def ping(state: State, name: str, timeout_s: float, as_json: bool) -> None:
    """Ask worker NAME to answer; print how long it took (up to a heartbeat, 2 s)."""
    broker = _control(state)
    _live(broker, name)
    nonce = secrets.token_hex(8)
    start = time.monotonic()
    broker.send_worker_command(name, PING + nonce)
    while _live(broker, name).get("pong") != nonce:
        if time.monotonic() - start >= timeout_s:
            click.echo(f"stem: error: worker {name} did not answer in {timeout_s}s", err=True)
            raise click.exceptions.Exit(EXIT_TIMEOUT)
        time.sleep(PING_POLL_S)
    latency_ms = round((time.monotonic() - start) * 1000)
    doc = {"id": name, "latency_ms": latency_ms}
    fields = [("id", name), ("latency_ms", str(latency_ms))]
    emit_done(f"worker {name} answered in {latency_ms} ms", doc, fields, as_json=as_json)


@click.command(
    name="stop",
    epilog=examples("stem worker stop host1/worker.1")
    + "\n\nExit code 4 when no live worker has that name.",
)
@click.argument("name", metavar="NAME")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "stop"}.')
@click.pass_obj
def stop(state: State, name: str, as_json: bool) -> None:
    """Stop worker NAME gracefully, as SIGTERM does (within a heartbeat, 2 s).

    Running jobs get the worker's --stop-timeout-s, then are handed back. Under
    `stem supervise` the supervisor starts a new worker in its place.
    """
    broker = _control(state)
    _live(broker, name)
    broker.send_worker_command(name, STOP)
    doc = {"id": name, "stop": "sent"}
    emit_done(f"stop sent to worker {name}", doc, [("id", name), ("stop", "sent")], as_json=as_json)
