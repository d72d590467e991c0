"""``stem limit list|show|set|clear`` and the limiter actor, ``stem ratelimit``.

Definitions come from the app's code (give ``--app`` to see them) with the run-time
overrides of ``stem limit set`` on top (stored in Redis, ``ns:limits``); workers and the
limiter re-read them every half second. ``clear`` drops the override (back to the code).
"""

from __future__ import annotations

import json
from typing import Any

import click

from stem.broker.keys import check_name
from stem.cli.actors import actor_module
from stem.cli.output import Column, echo_json, emit, examples
from stem.cli.root import State
from stem.errors import ConfigError, UsageError
from stem.limits import apply_override, effective, parse_rate, to_json
from stem.limits import check_name as check_limit_name

COLUMNS = [
    Column("name", "NAME"),
    Column("concurrency", "CONCURRENCY", lambda v: str(v) if v else "-"),
    Column("rate", "RATE", lambda v: v or "-"),
    Column("burst", "BURST"),
    Column("source", "SOURCE"),
]


def _rows(state: State) -> list[dict[str, Any]]:
    app = state.app
    code = app.limit_specs()
    overrides = app.broker.limit_overrides()
    rows = []
    for limit in effective(code, overrides):
        source = "set" if limit.name in overrides else "code"
        rows.append({"name": limit.name, **to_json(limit), "source": source})
    return rows


@click.group(
    name="limit",
    epilog=examples(
        "stem --app myapp.jobs:app limit list",
        "stem limit set stripe --rate 50/s",
        "stem limit set myapp.jobs.export --concurrency 4 --json",
        "stem limit clear stripe",
    ),
)
def limit() -> None:
    """Show and change rate and concurrency limits while everything runs."""


@limit.command(
    name="list",
    epilog=examples(
        "stem --app myapp.jobs:app limit list", "stem limit list --json | jq '.[].name'"
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def list_(state: State, as_json: bool) -> None:
    """Every limit in force (from --app's code and `stem limit set`), with its source."""
    rows = _rows(state)
    emit(rows, COLUMNS, as_json=as_json, empty="no limits")
    _warn_without_limiter(state)


def _warn_without_limiter(state: State) -> None:
    """Say on stderr when no rate limiter is alive: throttled jobs then wait (and how many
    wait now)."""
    broker = state.app.broker
    if broker.actors("ratelimiter"):
        return
    waiting = {q: n for q in broker.queues() if (n := broker.limit_waiting(q))}
    what = "throttled jobs"
    if waiting:
        what += " (" + ", ".join(f"{n} in {q}" for q, n in waiting.items()) + ")"
    click.echo(
        f"stem: warning: no rate limiter is running: {what} wait until one runs "
        "(`stem ratelimit`, or ratelimiter = true in [supervise])",
        err=True,
    )


@limit.command(name="show", epilog=examples("stem --app myapp.jobs:app limit show stripe --json"))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_obj
def show(state: State, name: str, as_json: bool) -> None:
    """One limit's definition and the limiter's counters of every queue."""
    rows = [r for r in _rows(state) if r["name"] == name]
    if not rows:
        raise UsageError(f"no limit named {name!r} (give --app to see the code's limits)")
    broker = state.app.broker
    doc = {**rows[0], "queues": {q: broker.limit_counters(q) for q in broker.queues()}}
    doc["limiters"] = [a.get("id") for a in broker.actors("ratelimiter")]
    _warn_without_limiter(state)
    if as_json:
        echo_json(doc)
        return
    emit(rows, COLUMNS, as_json=False, empty="")
    for queue, counters in doc["queues"].items():
        click.echo(f"{queue}: " + " ".join(f"{k}={v}" for k, v in counters.items()))


@limit.command(
    name="set",
    epilog=examples(
        "stem limit set stripe --rate 50/s",
        "stem limit set stripe --rate 50/s --burst 10",
        "stem limit set myapp.jobs.export --concurrency 4",
        "stem limit set stripe --no-rate        # concurrency only",
    ),
)
@click.argument("name")
@click.option("--rate", metavar="N/s|m|h", help="Starts per second, minute or hour.")
@click.option("--no-rate", is_flag=True, help="Remove the rate.")
@click.option("--concurrency", type=click.IntRange(min=0), help="Jobs at once (0: no bound).")
@click.option("--burst", type=click.IntRange(min=0), help="Extra starts allowed at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored override as JSON.")
@click.pass_obj
def set_(
    state: State,
    name: str,
    rate: str | None,
    no_rate: bool,
    concurrency: int | None,
    burst: int | None,
    as_json: bool,
) -> None:
    """Change limit NAME everywhere within a second (overrides the code's definition)."""
    check_limit_name(name)
    if rate is None and not no_rate and concurrency is None and burst is None:
        raise UsageError("give --rate, --no-rate, --concurrency or --burst")
    if rate is not None:
        parse_rate(rate)  # refuse a bad rate before storing it
    broker = state.app.broker
    current: dict[str, Any] = {}
    raw = broker.limit_overrides().get(name)
    if raw:
        try:
            current = dict(json.loads(raw))
        except (ValueError, TypeError):
            current = {}
    if rate is not None or no_rate:
        current["rate"] = rate
    if concurrency is not None:
        current["concurrency"] = concurrency
    if burst is not None:
        current["burst"] = burst
    from stem.broker import LimitSpec

    try:
        apply_override(LimitSpec(name), current)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"limit {name!r}: {exc}") from None
    broker.set_limit_override(name, json.dumps(current, sort_keys=True))
    if as_json:
        echo_json({"name": name, "override": current})
    else:
        click.echo(f"limit {name}: " + " ".join(f"{k}={v}" for k, v in sorted(current.items())))


@limit.command(name="clear", epilog=examples("stem limit clear stripe"))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def clear(state: State, name: str, as_json: bool) -> None:
    """Drop the run-time definition of NAME (the code's applies again)."""
    check_limit_name(name)
    had = state.app.broker.clear_limit_override(name)
    if as_json:
        echo_json({"name": name, "cleared": had})
    else:
        click.echo(f"limit {name}: " + ("override cleared" if had else "had no override"))


@click.command(
    name="ratelimit",
    epilog=examples(
        "stem --app myapp.jobs:app ratelimit",
        "stem --app myapp.jobs:app ratelimit --queues default,api --interval-s 0.1",
    )
    + """

Releases throttled jobs when their limits allow them (round-robin across keys, FIFO
within one) and takes back slots of deliveries that are over. Run any number of them;
without one, throttled jobs wait (nothing is lost and no limit is exceeded).
""",
)
@click.option(
    "-Q", "--queues", metavar="A,B", help="Only these queues.", show_default="every known queue"
)
@click.option(
    "--interval-s",
    type=click.FloatRange(min=0.005),
    default=0.05,
    show_default=True,
    metavar="S",
    help="Seconds between idle rounds.",
)
@click.pass_obj
def ratelimit(state: State, queues: str | None, interval_s: float) -> None:
    """Run the rate limiter actor: release throttled jobs, take back dead holders' slots."""
    names = None
    if queues is not None:
        names = [check_name("queue name", q.strip()) for q in queues.split(",") if q.strip()]
        if not names:
            raise ConfigError("--queues names no queue")
    module = actor_module("stem.ratelimit")
    raise click.exceptions.Exit(module.run(state.app, queues=names, interval_s=interval_s))
